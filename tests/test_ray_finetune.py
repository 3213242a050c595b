"""A short residual fine-tune on a local Ray: 2 actor workers + learner, one worker killed mid-run.

Real parts throughout: MuJoCo sim/reach envs in Ray actor processes, the shared
run_actor/run_learner loops, the zarr online log. One run serves both tests
(Ray start-up and worker imports dominate the cost on 2 cores).
"""
import os
import signal
import time

import pytest

ray = pytest.importorskip("ray")

from robotlearn.data import EpisodeDataset  # noqa: E402
from robotlearn.rl.residual import ResidualConfig  # noqa: E402
from robotlearn.runtime.actor import ActorConfig  # noqa: E402
from robotlearn.runtime.learner import LearnerConfig  # noqa: E402
from robotlearn.runtime.ray_runtime import RayRun, RayRuntimeConfig  # noqa: E402
from robotlearn.runtime.spec import RunSpec  # noqa: E402


def _wait_for(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """Start, check both actors feed the learner, SIGKILL actor-0, let it come back, stop, collect."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out = tmp_path_factory.mktemp("ray_ft")
    rl = ResidualConfig(num_critics=2, hidden_dim=32, num_layers=1, batch_size=32, utd=1, critic_warmup_updates=10,
                        warmup_env_steps=50)
    lc = LearnerConfig(out_dir=str(out), publish_every=10, max_env_steps=200_000, min_online_steps=100,
                       tensorboard=False, progress=False, checkpoint_every=10_000)
    ac = ActorConfig(pace_hz=100.0, heartbeat_s=0.5)
    rt = RayRuntimeConfig(num_actors=2, num_cpus=2, actor_cpus=0.5, learner_cpus=0.5, max_restarts=2,
                          temp_dir="/tmp/rl-ray-ft")
    run = RayRun(RunSpec(env="sim/reach", base="zero", rl=rl, learner=lc, actor=ac, runtime=rt)).start()
    obs = {}
    try:
        def both_fed_and_updated():
            st, beats = run.hub_stats(), run.heartbeats()
            rows = {a: c["rows"] for a, c in st["received"].items()}
            versions = {a: b[1]["version"] for a, b in beats.items()}
            ok = len(rows) == 2 and min(rows.values()) >= 100 and len(versions) == 2 and min(versions.values()) >= 3
            return (rows, versions, st) if ok else None

        obs["rows"], obs["versions"], st = _wait_for(both_fed_and_updated, 90, "both actors' episodes + new versions")
        victim = st["registrations"]["actor-0"][-1]
        obs["version_at_kill"] = st["version"]
        os.kill(victim, signal.SIGKILL)
        obs["victim_pid"] = victim

        def restarted_and_contributing():
            st, beats = run.hub_stats(), run.heartbeats()
            rows_after = st["received"]["actor-0"]["rows_by_incarnation"].get("1", 0)
            beat = beats["actor-0"][1]
            ok = len(st["registrations"]["actor-0"]) == 2 and rows_after >= 100 and beat["incarnation"] == 1 \
                and beat["version"] > obs["version_at_kill"]
            return st if ok else None

        obs["after"] = _wait_for(restarted_and_contributing, 90, "actor-0 restarted, re-registered and contributing")
        run.request_stop()
        obs["result"] = run.wait(timeout=60, progress=False)
    finally:
        run.shutdown()
    obs["out"] = out
    return obs


def test_both_actors_feed_the_learner_and_get_new_weights(killed_run):
    assert set(killed_run["rows"]) == {"actor-0", "actor-1"}
    assert min(killed_run["versions"].values()) >= 3  # versions published by the learner after training started
    result = killed_run["result"]
    assert result["updates"] > 0 and result["rejected"] == 0
    # the learner's zarr log holds every episode it ingested, from both actors
    ds = EpisodeDataset(killed_run["out"] / "online.zarr")
    assert ds.n_episodes == len(result["episodes"]) and ds.n_steps == result["env_steps"]
    assert result["env_steps"] >= sum(c["rows"] for c in killed_run["after"]["received"].values())
    assert len(result["actors"]) == 2 and all(a["version"] >= 3 for a in result["actors"])


def test_killed_actor_is_restarted_and_training_continues(killed_run):
    after, result = killed_run["after"], killed_run["result"]
    pids = after["registrations"]["actor-0"]
    assert pids[0] == killed_run["victim_pid"] and pids[1] != pids[0]
    assert len(after["registrations"]["actor-1"]) == 1  # the other worker was untouched
    assert result["version"] > killed_run["version_at_kill"]  # the learner kept training and publishing
    a0 = result["actors"][0]
    assert a0["incarnation"] == 1 and a0["pid"] == pids[1] and a0["steps"] > 0

