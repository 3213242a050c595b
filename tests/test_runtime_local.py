"""Async actor-learner over the local transport: real processes, real MuJoCo, real zarr logs."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest
import yaml

from robotlearn.data import EpisodeDataset
from robotlearn.policies.registry import make_base
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig
from robotlearn.runtime.local import run_local, spawn_actor, spawn_learner
from robotlearn.runtime.local_transport import make_local_transports
from robotlearn.runtime.messages import (
    EPISODE,
    Episode,
    MessageError,
    _encode,
    encode_weights,
    weights_version,
)
from robotlearn.runtime.spec import RunSpec

ENV = "sim/reach"
TINY = dict(num_critics=2, hidden_dim=32, batch_size=64, warmup_env_steps=100, critic_warmup_updates=20, utd=1)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> str:
    from robotlearn.cli import collect

    path = tmp_path_factory.mktemp("demos") / "reach.zarr"
    assert collect.main([f"env={ENV}", "episodes=3", "noise=0.5", f"out={path}", "progress=false"]) == 0
    return str(path)


def test_local_transport_bytes_weights_latest_wins_and_heartbeats():
    learner_t, (actor_t,) = make_local_transports(1, weights_capacity=1 << 16)
    payload = _encode(EPISODE, {"reward": np.zeros(3, np.float32)}, {})  # the transport carries any bytes
    actor_t.send_episode(payload)
    actor_t.heartbeat("a0", {"steps": 3})
    got, deadline = [], time.time() + 5
    while (not got or "a0" not in learner_t.heartbeats()) and time.time() < deadline:
        got += learner_t.recv_episodes(timeout=0.5)
    assert got == [payload]
    assert learner_t.heartbeats()["a0"][1] == {"steps": 3}
    assert actor_t.poll_weights() is None
    for v in (1, 2, 3):  # latest wins, no queue
        learner_t.publish_weights(encode_weights(v, {"w": np.full(2, v, np.float32)}))
    upd = actor_t.poll_weights()
    assert upd is not None and weights_version(upd) == 3
    assert actor_t.poll_weights() is None  # nothing newer
    with pytest.raises(ValueError, match="exceeds the local weights slot"):
        learner_t.publish_weights(encode_weights(4, {"w": np.zeros(1 << 15, np.float32)}))  # 128 kB
    with pytest.raises(MessageError):  # bytes that are not a weights message never reach the slot
        learner_t.publish_weights(b"x" * 100)
    actor_t.close()


def test_async_run_moves_weights_with_increasing_versions_and_logs_to_zarr(tmp_path, demos):
    rl = ResidualConfig(**TINY)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), publish_every=10, checkpoint_every=100, max_env_steps=400,
                       min_online_steps=64, tensorboard=True, progress=False)
    ac = ActorConfig(pace_hz=150, max_env_steps=400, heartbeat_s=0.2)
    res = run_local(RunSpec(env=ENV, base="zero", rl=rl, learner=lc, actor=ac, demos=demos))
    assert res["actor_exitcodes"] == [0]
    assert res["env_steps"] >= 400 and res["updates"] > 100
    # every online episode is in the zarr log, with the policy version the actor was running
    log = EpisodeDataset(tmp_path / "run" / "online.zarr")
    assert log.n_steps == res["env_steps"] and "base_action" in log.keys
    versions = log.meta_array("policy_version")
    assert np.all(np.diff(versions) >= 0), versions  # the actor only ever moves forward
    assert versions[-1] > versions[0] >= 1, versions  # new weights reached the actor mid-run
    assert set(log.meta_array("source").tolist()) == {log.attrs["categories"]["source"].index("policy")}
    # the residual on top of a zero base moved away from zero (executed != base action after warm-up)
    ep = log.get_episode(log.n_episodes - 1)
    assert np.abs(ep["action"] - ep["base_action"]).max() > 0
    assert (tmp_path / "run" / "checkpoint" / "learner.safetensors").exists()
    assert any((tmp_path / "run" / "tb").iterdir())


def test_killed_learner_resumes_from_checkpoint_and_zarr_log(tmp_path, demos):
    ctx = mp.get_context("spawn")
    out = tmp_path / "run"
    rl = ResidualConfig(**TINY)
    lc = LearnerConfig(out_dir=str(out), publish_every=10, checkpoint_every=50, max_env_steps=100_000,
                       min_online_steps=64, tensorboard=False, progress=False)
    learner_t, (actor_t,) = make_local_transports(1, ctx, weights_capacity=1 << 20)
    stop_actor, stop_learner = ctx.Event(), ctx.Event()
    spec = RunSpec(env=ENV, base="zero", rl=rl, learner=lc, actor=ActorConfig(pace_hz=150, heartbeat_s=0.2), demos=demos)
    actor = spawn_actor(ctx, actor_t, spec, 0, stop_actor)
    learner = spawn_learner(ctx, learner_t, spec, stop_learner)
    try:
        ckpt = out / "checkpoint" / "learner.yaml"
        deadline = time.time() + 90
        while time.time() < deadline and _updates(ckpt) < 50:
            time.sleep(0.2)  # wait for a checkpoint at >= 50 updates
        assert _updates(ckpt) >= 50, "no checkpoint written before the kill"
        os.kill(learner.pid, signal.SIGKILL)  # no chance to save anything on the way out
        learner.join(10)
        saved = yaml.safe_load(ckpt.read_text())
        logged = EpisodeDataset(out / "online.zarr")
        n_logged, max_version = logged.n_steps, int(logged.meta_array("policy_version").max())

        # restart: same out_dir, same pipe (the actor kept acting meanwhile), 60 more updates this time
        lc2 = LearnerConfig(**{**lc.__dict__, "max_updates": saved["num_updates"] + 60})
        learner = spawn_learner(ctx, learner_t, RunSpec(**{**spec.run_fields(), "learner": lc2}), stop_learner)
        learner.join(120)
        assert learner.exitcode == 0
    finally:
        stop_actor.set()
        actor.join(20)
        if learner.is_alive():
            learner.kill()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates"] > saved["num_updates"]  # continued from the checkpoint, not from 0
    log = EpisodeDataset(out / "online.zarr")
    assert len(summary["episodes"]) == log.n_episodes  # history rebuilt from the log, then extended
    assert summary["episodes"][logged.n_episodes - 1]["env_steps"] == n_logged
    assert log.n_steps > n_logged  # appended after the old episodes, nothing lost
    assert EpisodeDataset(out / "online.zarr").get_episode(logged.n_episodes - 1)["state"].shape[0] > 0
    new_versions = log.meta_array("policy_version")[logged.n_episodes:]
    assert new_versions.max() > max_version  # versions keep increasing across the restart


def _updates(ckpt) -> int:
    try:
        return int(yaml.safe_load(ckpt.read_text())["num_updates"])
    except (FileNotFoundError, TypeError, KeyError):
        return -1


def test_bad_episode_message_is_rejected_not_logged(tmp_path, demos):
    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), tensorboard=False, progress=False)
    L = Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, demos, make_base("zero", env))
    T = 5
    good = {"state": np.zeros((T, 24), np.float32), "action": np.zeros((T, 4), np.float32),
            "base_action": np.zeros((T, 4), np.float32), "reward": np.zeros(T, np.float32),
            "is_intervention": np.zeros(T, bool)}
    nan = {**good, "action": np.full((T, 4), np.nan, np.float32)}
    missing = {k: v for k, v in good.items() if k != "base_action"}
    wrong_shape = {**good, "state": np.zeros((T, 23), np.float32)}  # caught before the background log thread
    meta = dict(success=False, terminated=False, policy_version=0, actor_id="a")
    # sent as a peer that skips the sender's validation would send them
    n = L.ingest([_encode(EPISODE, nan, meta), _encode(EPISODE, missing, meta), b"garbage",
                  _encode(EPISODE, wrong_shape, meta), Episode(good, **meta).encode()])
    assert n == T and L.rejected == 4
    L.close()
    assert EpisodeDataset(tmp_path / "run" / "online.zarr").n_episodes == 1
    with pytest.raises(MessageError):
        Episode.decode(b"garbage")


def test_online_log_thread_commits_in_order_and_surfaces_write_errors(tmp_path, demos):
    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), tensorboard=False, progress=False)
    L = Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, demos, make_base("zero", env))
    eps = [{"state": np.full((T, 24), i, np.float32), "action": np.zeros((T, 4), np.float32),
            "base_action": np.zeros((T, 4), np.float32), "reward": np.zeros(T, np.float32),
            "is_intervention": np.zeros(T, bool)} for i, T in enumerate([3, 7, 5])]
    L.ingest([Episode(e, success=i == 1, terminated=False, policy_version=i, actor_id="a").encode()
              for i, e in enumerate(eps)])
    L.checkpoint()  # flushes the log thread first
    ds = EpisodeDataset(tmp_path / "run" / "online.zarr")
    assert list(ds.episode_ends) == [3, 10, 15] and list(ds.meta_array("policy_version")) == [0, 1, 2]
    assert [float(ds.get_episode(i, keys=["state"])["state"][0, 0]) for i in range(3)] == [0.0, 1.0, 2.0]
    # a failing write (disk full, store gone) is not swallowed: the next checkpoint/close raises it
    L.writer.add_episode = lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))
    L.ingest([Episode(eps[0], success=False, terminated=False, policy_version=3, actor_id="a").encode()])
    with pytest.raises(RuntimeError, match="disk full"):
        L.checkpoint()
    with pytest.raises(RuntimeError, match="disk full"):
        L.close()
    assert EpisodeDataset(tmp_path / "run" / "online.zarr").n_episodes == 3


def test_resume_continues_the_sampler_and_torch_random_streams(tmp_path, demos):
    import torch

    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), tensorboard=False, progress=False, seed=3)
    make = lambda: Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, demos,  # noqa: E731
                           make_base("zero", env))
    L = make()
    T = 40
    ep = {"state": np.random.default_rng(0).normal(size=(T, 24)).astype(np.float32),
          "action": np.zeros((T, 4), np.float32), "base_action": np.zeros((T, 4), np.float32),
          "reward": np.zeros(T, np.float32), "is_intervention": np.zeros(T, bool)}
    L.ingest([Episode(ep, success=False, terminated=False, policy_version=0, actor_id="a").encode()])
    L.sampler.sample(16, L.rng)  # advance the streams before the checkpoint
    torch.rand(5)
    L.checkpoint()
    uninterrupted = (L.sampler.sample(16, L.rng)["state"], torch.rand(5))
    L.close()
    torch.manual_seed(1234)  # a restarted process starts from some other RNG state
    R = make()
    resumed = (R.sampler.sample(16, R.rng)["state"], torch.rand(5))
    R.close()
    np.testing.assert_array_equal(resumed[0], uninterrupted[0])
    assert torch.equal(resumed[1], uninterrupted[1])


@pytest.mark.parametrize("key, value", [("hidden_dim", 64), ("state_norm", "robust"), ("base_only_dims", (1,))])
def test_resume_with_other_network_settings_is_a_clear_error(tmp_path, demos, key, value):
    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), tensorboard=False, progress=False)
    L = Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, demos, make_base("zero", env))
    L.checkpoint()
    L.close()
    with pytest.raises(ValueError, match=f"cannot resume .*{key}"):
        Learner(None, ResidualConfig(**{**TINY, key: value}), lc, env.env_info, env.observation_space, demos,
                make_base("zero", env))


def test_demo_success_only_keeps_the_successful_episodes_and_says_when_there_are_none(tmp_path, demos):
    from robotlearn.data import EpisodeWriter
    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    src = EpisodeDataset(demos)
    ep0, ep1 = src.get_episode(0), src.get_episode(1)
    mixed, failed = tmp_path / "mixed.zarr", tmp_path / "failed.zarr"
    w = EpisodeWriter(mixed, env_info=src.env_info)
    w.add_episode(ep0, success=False, terminated=False)
    w.add_episode(ep1, success=True)
    w.close()
    w = EpisodeWriter(failed, env_info=src.env_info)
    w.add_episode(ep0, success=False, terminated=False)
    w.close()

    def demo_steps(path, only: bool, run: str) -> int:
        lc = LearnerConfig(out_dir=str(tmp_path / run), tensorboard=False, progress=False, demo_success_only=only)
        L = Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, str(path),
                    make_base("zero", env))
        n = L.demo_buffer.n_added_steps
        L.close()
        return n

    assert demo_steps(mixed, False, "all") == len(ep0["action"]) + len(ep1["action"])
    assert demo_steps(mixed, True, "succ") == len(ep1["action"])
    with pytest.raises(ValueError, match="none of its 1 episodes is marked successful"):
        demo_steps(failed, True, "none")


def test_intervention_steps_join_the_demo_half_with_the_human_correction(tmp_path, demos):
    """HIL-SERL: a stretch a human took over goes into the demo half too; the residual target there is
    the human's action minus the base's. With interventions_to_demos off it stays online data only."""
    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import Learner

    env = make_env(ENV)
    T, S = 12, env.observation_space["state"].shape[0]
    human = np.array([0.5, -0.5, 0.25, 1.0], np.float32)
    flags = np.zeros(T, bool)
    flags[4:8] = True
    ep = {"state": np.arange(T * S, dtype=np.float32).reshape(T, S), "action": np.zeros((T, 4), np.float32),
          "base_action": np.full((T, 4), 0.1, np.float32), "reward": np.zeros(T, np.float32),
          "is_intervention": flags}
    ep["action"][flags] = human
    msg = Episode(ep, success=False, terminated=False, policy_version=0, actor_id="a").encode()
    for on in (True, False):
        lc = LearnerConfig(out_dir=str(tmp_path / f"run{on}"), tensorboard=False, progress=False,
                           interventions_to_demos=on)
        L = Learner(None, ResidualConfig(**TINY), lc, env.env_info, env.observation_space, demos,
                    make_base("zero", env))
        n_demo = len(L.demo_buffer)
        L.ingest([msg])
        assert len(L.online_buffer) == T - 1
        if not on:
            assert L.intervention_buffer is None and len(L.demo_half) == n_demo
            L.close()
            continue
        assert len(L.intervention_buffer) == 4  # steps 4..7, each with its successor as the bootstrap state
        b = L.intervention_buffer.sample(64, np.random.default_rng(0))
        rows = (b["state"][:, 0] / S).astype(int)
        assert set(rows.tolist()) <= {4, 5, 6, 7}
        np.testing.assert_allclose(b["action"] - b["base_action"], np.tile(human - 0.1, (64, 1)), atol=1e-6)
        # the demo half draws from demos and interventions in proportion to their sizes
        batch = L.demo_half.sample(len(L.demo_half), np.random.default_rng(1))
        from_iv = np.isin(batch["state"][:, 0], ep["state"][4:8, 0])
        assert from_iv.sum() == 4 and len(batch["state"]) == n_demo + 4
        L.close()


def test_resumed_run_spends_only_what_is_left_and_never_repeats_a_reset_seed(tmp_path, demos):
    """The finding: a resumed finetune ran the full env_steps again and restarted reset seeds at 0."""
    rl = ResidualConfig(**TINY)
    out = str(tmp_path / "run")

    def run(total: int) -> dict:
        lc = LearnerConfig(out_dir=out, publish_every=10, checkpoint_every=50, max_env_steps=total,
                           min_online_steps=64, tensorboard=False, progress=False)
        return run_local(RunSpec(env=ENV, base="zero", rl=rl, learner=lc, actor=ActorConfig(heartbeat_s=0.2),
                                 demos=demos))

    assert run(300)["actor_exitcodes"] == [0]
    first = EpisodeDataset(f"{out}/online.zarr")
    n1, horizon = first.n_steps, int(first.meta_array("length").max())
    assert 300 <= n1 < 300 + horizon
    assert run(600)["actor_exitcodes"] == [0]
    log = EpisodeDataset(f"{out}/online.zarr")
    assert 600 <= log.n_steps < 600 + horizon  # the budget is the run's total, not per start
    seeds = log.meta_array("seed")
    assert len(set(seeds.tolist())) == log.n_episodes and seeds.min() >= 0  # every episode a new initial state
    names = log.attrs["categories"]["actor_id"]
    assert {names[c] for c in log.meta_array("actor_id")} == {"actor-0"}


def _actor_in_thread(cfg: ActorConfig, backlog: int):
    """run_actor on sim/reach in a thread over the real local transport; the test plays the learner."""
    import threading

    from robotlearn.envs import make_env
    from robotlearn.rl.residual import ResidualLearner
    from robotlearn.runtime.actor import run_actor

    env = make_env(ENV)
    rl = ResidualConfig(**TINY)
    learner_t, (actor_t,) = make_local_transports(1, weights_capacity=1 << 20)
    weights = ResidualLearner(env.observation_space["state"].shape[0], env.action_space.shape[0], rl).actor_weights()
    publish = lambda v, b: learner_t.publish_weights(encode_weights(v, weights, backlog_steps=b))  # noqa: E731
    publish(1, backlog)
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(run_actor(actor_t, env, make_base("zero", env), rl, cfg)))
    t.start()
    return t, out, publish, learner_t


def _steps_seen(learner_t) -> int:
    learner_t.recv_episodes(timeout=0.2)
    return max((s.get("steps", 0) for _, s in learner_t.heartbeats().values()), default=0)


def test_sim_actor_holds_while_the_learner_is_behind_and_resumes_when_it_catches_up():
    cfg = ActorConfig(max_lead_steps=1000, max_env_steps=150, heartbeat_s=0.1)
    t, out, publish, learner_t = _actor_in_thread(cfg, backlog=5000)  # the learner owes 5000 steps of updates
    time.sleep(1.5)
    assert _steps_seen(learner_t) == 0 and t.is_alive()  # held: not one env step
    publish(2, 200)  # caught up to within the lead
    t.join(30)
    assert not t.is_alive() and out["steps"] >= 150
    assert 1.0 < out["held_for_learner_s"] < 10


def test_a_hold_ends_when_no_weights_arrive_and_max_lead_zero_never_holds():
    # weights that stop coming (a learner that stopped training) do not hold the actor past learner_timeout_s
    t, out, _, _ = _actor_in_thread(ActorConfig(max_lead_steps=1000, max_env_steps=150, learner_timeout_s=1.0),
                                    backlog=5000)
    t.join(30)
    assert not t.is_alive() and out["steps"] >= 150 and 0.8 < out["held_for_learner_s"] < 5
    t, out, _, _ = _actor_in_thread(ActorConfig(max_lead_steps=0, max_env_steps=150), backlog=5000)
    t.join(30)
    assert not t.is_alive() and out["held_for_learner_s"] == 0
    with pytest.raises(Exception, match="max_lead_steps"):
        ActorConfig(max_lead_steps=-1)


def test_learner_weights_report_its_backlog_in_env_steps(tmp_path):
    from robotlearn.envs import make_env
    from robotlearn.runtime.actor import Actor
    from robotlearn.runtime.learner import Learner
    from robotlearn.runtime.messages import decode_weights

    env = make_env(ENV)
    rl = ResidualConfig(**{**TINY, "utd": 2})
    learner_t, (actor_t,) = make_local_transports(1, weights_capacity=1 << 20)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), resume=False, tensorboard=False, progress=False,
                       min_online_steps=64)
    learner = Learner(learner_t, rl, lc, env.env_info, env.observation_space)
    actor = Actor(env, make_base("zero", env), rl, ActorConfig())
    while learner.learner.env_steps < 64:  # whole episodes, as an actor sends them
        payload = actor.step()
        if payload is not None:
            learner.ingest([payload])
    owed = learner.updates_owed()
    assert owed > 0
    learner.publish()
    assert decode_weights(actor_t.poll_weights())[2]["backlog_steps"] == -(-owed // rl.utd)
    learner.train(max_updates=1 << 30)
    learner.publish()
    assert decode_weights(actor_t.poll_weights())[2]["backlog_steps"] == 0
    learner.close()
    env.close()
