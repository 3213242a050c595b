"""Fault suite, processes: kill -9 any process of a local run and the rest notice within 5 s.

The target is 5 s (measured in the hardening notes); the tests allow more so a loaded machine does
not fail them. The kill matrix (writer and checkpoint-save kills are in test_data_writer.py / test_atomic_dir.py,
a killed and resumed learner in test_runtime_local.py):
    actor, learner in the main process   -> the run ends with RunError naming the actor, signal and log
    actor, learner in its own process    -> the same (it used to hang with no message)
    learner in its own process           -> RunError naming the learner
    the main process                     -> actor and learner processes exit by themselves
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.assembly import RunError
from robotlearn.runtime.learner import LearnerConfig
from robotlearn.runtime.spec import RunSpec

NOTICE_S = 10.0  # a death is seen by the supervisor's sentinel wait (1 s) and the run ends
ORPHAN_S = 20.0  # orphaned children see their parent gone at their next step, then shut down cleanly
TINY = dict(num_critics=2, hidden_dim=32, batch_size=64, warmup_env_steps=100, critic_warmup_updates=20, utd=1)


def _spec(tmp_path, in_process: bool) -> RunSpec:
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), max_env_steps=100_000, min_online_steps=64,
                       tensorboard=False, progress=False)
    return RunSpec(env="sim/reach", base="zero", rl=ResidualConfig(**TINY), learner=lc,
                   actor=ActorConfig(pace_hz=100, heartbeat_s=0.2),
                   runtime={"name": "local", "learner_in_process": in_process})


def _run_in_thread(spec):
    from robotlearn.runtime.local import run_local

    box: dict = {}

    def target():
        try:
            box["result"] = run_local(spec)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"], box["t"] = e, time.monotonic()

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th, box


def _child(name: str, timeout: float = 60.0) -> mp.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in mp.active_children():
            if p.name == name:
                return p
        time.sleep(0.1)
    raise AssertionError(f"no child process {name!r} within {timeout} s")


def _wait_for_log(tmp_path, timeout: float = 60.0) -> None:
    """Until the run has logged an episode (its processes are up and working)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (tmp_path / "run/online.zarr/meta/episode_ends/c").exists():
        time.sleep(0.2)


def _kill_during_run(tmp_path, in_process: bool, victim: str) -> tuple[mp.Process, BaseException, float]:
    """Start a local run, SIGKILL its child `victim` once episodes are logged: (victim, the run's error, delay)."""
    th, box = _run_in_thread(_spec(tmp_path, in_process))
    proc = _child(victim)
    _wait_for_log(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    th.join(60)
    assert isinstance(box.get("error"), RunError), box
    return proc, box["error"], box["t"] - t_kill


@pytest.mark.parametrize("in_process", [True, False], ids=["learner-in-main", "learner-process"])
def test_killed_actor_ends_the_run_within_5s_naming_it(tmp_path, in_process):
    actor, error, delay = _kill_during_run(tmp_path, in_process, "actor-0")
    assert delay < NOTICE_S
    msg = str(error)
    assert f"actor-0 (pid {actor.pid}) was killed by SIGKILL" in msg and "logs/actor-0.log" in msg


def test_killed_learner_process_ends_the_run_naming_it(tmp_path):
    _, error, delay = _kill_during_run(tmp_path, False, "learner")
    assert delay < NOTICE_S and "learner" in str(error) and "SIGKILL" in str(error)


MAIN = """
import sys, time
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig
from robotlearn.runtime.local import run_local
from robotlearn.runtime.spec import RunSpec
lc = LearnerConfig(out_dir=sys.argv[1], max_env_steps=100_000, min_online_steps=64, tensorboard=False, progress=False)
run_local(RunSpec(env="sim/reach", base="zero", rl=ResidualConfig(num_critics=2, hidden_dim=32, batch_size=64),
                  learner=lc, actor=ActorConfig(pace_hz=100), runtime={"name": "local", "learner_in_process": False}))
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_killed_main_process_leaves_no_actor_or_learner_behind(tmp_path):
    main = subprocess.Popen([sys.executable, "-c", MAIN, str(tmp_path / "run")])
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (tmp_path / "run/online.zarr/meta/episode_ends/c").exists():
            time.sleep(0.2)
        workers = [c for c in _children(main.pid) if "resource_tracker" not in open(f"/proc/{c}/cmdline").read()]
        assert len(workers) >= 2, workers  # the actor and the learner
        main.kill()
        main.wait(10)
        t_kill = time.monotonic()
        while time.monotonic() - t_kill < ORPHAN_S and any(_alive(c) for c in workers):
            time.sleep(0.1)
        assert not any(_alive(c) for c in workers), f"orphaned run processes kept running: {[c for c in workers if _alive(c)]} of {workers}"
    finally:
        if main.poll() is None:
            main.kill()
        for c in _children(main.pid):
            os.kill(c, signal.SIGKILL)
