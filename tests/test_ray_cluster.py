"""`runtime.address=<head>` joins an existing Ray cluster (here a head started with `ray start`).

The run ends the normal way (learner's env-step budget, actors' own step share)
and leaves the cluster running: the command only disconnects from it.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from robotlearn.data import EpisodeDataset  # noqa: E402
from robotlearn.rl.residual import ResidualConfig  # noqa: E402
from robotlearn.runtime.actor import ActorConfig  # noqa: E402
from robotlearn.runtime.learner import LearnerConfig  # noqa: E402
from robotlearn.runtime.ray_runtime import RayRuntimeConfig, run_ray  # noqa: E402
from robotlearn.runtime.spec import RunSpec  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head in its own process group (so teardown ends exactly what it started)."""
    port = _free_port()
    ray_bin = Path(sys.executable).with_name("ray")
    cmd = [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--temp-dir=/tmp/rl-ray-cl",
           "--include-dashboard=false", "--disable-usage-stats", f"--ray-client-server-port={_free_port()}", "--block"]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    yield f"127.0.0.1:{port}"
    if ray.is_initialized():
        ray.shutdown()
    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGTERM)
    time.sleep(2)
    try:
        os.killpg(pgid, signal.SIGKILL)  # `ray start --block` does not always exit on SIGTERM
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_join_existing_cluster_and_finish_on_budget(ray_head, tmp_path):
    rl = ResidualConfig(num_critics=2, hidden_dim=32, num_layers=1, batch_size=32, utd=1, critic_warmup_updates=10,
                        warmup_env_steps=50)
    lc = LearnerConfig(out_dir=str(tmp_path), publish_every=10, max_env_steps=400, min_online_steps=100,
                       tensorboard=False, progress=False, checkpoint_every=10_000)
    ac = ActorConfig(pace_hz=200.0, max_env_steps=400)  # the actor stops on its own share, like finetune sets it
    rt = RayRuntimeConfig(num_actors=1, address=ray_head, actor_cpus=1.0, learner_cpus=1.0)
    deadline = time.monotonic() + 60
    while True:  # the head takes a few seconds to accept drivers
        try:
            ray.init(address=ray_head, include_dashboard=False, log_to_driver=False)
            ray.shutdown()
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    result = run_ray(RunSpec(env="sim/reach", base="zero", rl=rl, learner=lc, actor=ac, runtime=rt), progress=False)
    assert result["env_steps"] >= 400 and result["updates"] > 0 and result["version"] >= 2
    (actor,) = result["actors"]
    assert "error" not in actor and actor["steps"] >= 400
    assert EpisodeDataset(tmp_path / "online.zarr").n_steps == result["env_steps"]
    assert not ray.is_initialized()  # disconnected from the cluster ...
    ray.init(address=ray_head, include_dashboard=False, log_to_driver=False)
    assert ray.cluster_resources().get("CPU") == 2.0  # ... which is still up for the next job
    ray.shutdown()


def test_actor_errors_are_not_retried_and_stop_the_run_cleanly(ray_head, tmp_path, capsys):
    """A Python error in every actor (here a bad base spec) is reported, not looped on; the learner still checkpoints."""
    rl = ResidualConfig(num_critics=2, hidden_dim=32, num_layers=1, batch_size=32)
    lc = LearnerConfig(out_dir=str(tmp_path), max_env_steps=400, tensorboard=False, progress=False)
    rt = RayRuntimeConfig(num_actors=2, address=ray_head, actor_cpus=0.5, learner_cpus=0.5, stop_timeout_s=10)
    result = run_ray(RunSpec(env="sim/reach", base="expert:not-a-number", rl=rl, learner=lc, runtime=rt), progress=False)
    assert result["env_steps"] == 0
    assert all("error" in a and "not-a-number" in a["error"] for a in result["actors"]), result["actors"]
    assert all(len(pids) == 1 for pids in result["hub"]["registrations"].values())  # no restart loop
    assert (tmp_path / "checkpoint" / "learner.yaml").exists()
    assert "stopped with an error" in capsys.readouterr().out
