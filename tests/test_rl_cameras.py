"""Residual RL from cameras on the CPU path (`rl.encoder=base`): real MuJoCo renders, a real image BC
checkpoint, actor and learner in separate processes, the zarr log as the source of truth."""
import json

import numpy as np
import pytest
import torch
import yaml

from robotlearn.data import EpisodeDataset
from robotlearn.envs import make_env
from robotlearn.envs.registry import env_config
from robotlearn.policies.checkpoint import load_policy
from robotlearn.rl.features import FEATURES_KEY, FrozenImageEncoder
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import Learner, LearnerConfig
from robotlearn.runtime.local import run_local
from robotlearn.runtime.messages import Episode
from robotlearn.runtime.spec import RunSpec

torch.set_num_threads(1)
ENV = {**env_config("sim/lift"), "obs": "proprio", "cameras": ["front"], "image_size": 32, "horizon": 40}
TINY = dict(num_critics=2, hidden_dim=32, batch_size=32, warmup_env_steps=60, critic_warmup_updates=10, utd=1,
            encoder="base")


@pytest.fixture(scope="module")
def camera_base(tmp_path_factory):
    """Demos on sim/lift with the cube only in a 32x32 camera, and a small image BC checkpoint trained on them."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.train_bc import TrainBCConfig, run
    from robotlearn.policies.config import BCConfig, EncoderConfig, PolicyConfig

    tmp = tmp_path_factory.mktemp("camera_base")
    demos = tmp / "lift_cam.zarr"
    collect(CollectConfig(env=ENV, episodes=3, noise=0.1, out=str(demos), progress=False))
    pol = PolicyConfig(kind="bc", horizon=4, n_action_steps=1, n_obs=1,
                       encoder=EncoderConfig(state_hidden=[32], state_features=32, image_channels=8,
                                             image_keypoints=8),
                       bc=BCConfig(hidden=[32]))
    res = run(TrainBCConfig(dataset=str(demos), policy=pol, steps=5, out_dir=str(tmp / "bc"), batch_size=8,
                            eval_every=0, final_eval_episodes=0, progress=False))
    return str(res.out_dir / "checkpoints" / "last"), str(demos)


def test_one_frame_gives_the_same_features_on_the_actor_and_in_a_learner_batch(camera_base):
    ckpt, _ = camera_base
    enc = FrozenImageEncoder(load_policy(ckpt, device="cpu"), ckpt)
    assert enc.image_keys == ["images/front"] and enc.dim == 2 * 8
    env = make_env(ENV)
    obs, _ = env.reset(seed=0)
    frames = [obs["images/front"]]
    for _ in range(5):
        obs, *_ = env.step(np.array([0.3, -0.2, 0.1, -1.0], np.float32))
        frames.append(obs["images/front"])
    env.close()
    batch = enc.batch({"images/front": np.stack(frames)})  # what the learner computes for demo frames
    single = np.stack([enc({"images/front": f}) for f in frames])  # what the actor computes, one step at a time
    assert batch.shape == (6, 16) and batch.dtype == np.float32
    np.testing.assert_allclose(single, batch, atol=1e-5)
    assert np.abs(batch[0] - batch[-1]).max() > 1e-4  # the features follow the scene (the arm moved)


def test_async_camera_run_logs_frames_and_features_and_a_restart_rebuilds_the_replay(camera_base, tmp_path):
    ckpt, demos = camera_base
    rl = ResidualConfig(**TINY)
    lc = LearnerConfig(out_dir=str(tmp_path / "run"), publish_every=10, checkpoint_every=100, max_env_steps=240,
                       min_online_steps=40, tensorboard=False, progress=False)
    spec = RunSpec(env=ENV, base=ckpt, demos=demos, rl=rl, learner=lc, actor=ActorConfig(pace_hz=150))
    res = run_local(spec)
    assert res["actor_exitcodes"] == [0] and res["env_steps"] >= 240 and res["updates"] > 0 and res["rejected"] == 0
    log = EpisodeDataset(tmp_path / "run" / "online.zarr")
    assert {"images/front", FEATURES_KEY, "state", "base_action"} <= set(log.keys)
    versions = log.meta_array("policy_version")
    assert versions[-1] > versions[0] and np.all(np.diff(versions) >= 0)
    # the features the learner trained on are the encoder's output for the frames logged beside them
    enc = FrozenImageEncoder(load_policy(ckpt, device="cpu"), ckpt)
    ep = log.get_episode(log.n_episodes - 1)
    assert ep["images/front"].dtype == np.uint8 and ep["images/front"].shape[1:] == (32, 32, 3)
    np.testing.assert_allclose(ep[FEATURES_KEY], enc.batch({"images/front": ep["images/front"]}), atol=1e-5)
    meta = yaml.safe_load((tmp_path / "run" / "checkpoint" / "learner.yaml").read_text())
    assert meta["state_dim"] == 18 + enc.dim  # the residual reads [proprio state, image features]
    # a restarted learner rebuilds its replay from the log: every logged step, at the same width
    env = make_env(ENV)
    L = Learner(None, rl, lc, env.env_info, env.observation_space, demos, None, enc)
    env.close()
    assert L.online_buffer.n_added_steps == log.n_steps
    assert L.online_buffer._store["state"].shape[1] == L.demo_buffer._store["state"].shape[1] == 18 + enc.dim
    # an episode without features is refused by a learner that reads them, and the loop goes on
    bad = {k: ep[k] for k in ("state", "action", "base_action", "reward", "is_intervention", "images/front")}
    assert L.ingest([Episode(bad, success=False, terminated=False, policy_version=1).encode()]) == 0
    assert L.rejected == 1
    L.close()


def test_finetune_cli_from_a_camera_base_end_to_end(camera_base, tmp_path):
    from robotlearn.cli import finetune

    ckpt, demos = camera_base
    out = tmp_path / "ft"
    argv = ["env=sim/lift", "env.obs=proprio", "env.cameras=[front]", "env.image_size=32", "env.horizon=40",
            f"base={ckpt}", f"demos={demos}", "rl.encoder=base", f"out={out}", "env_steps=160", "eval_episodes=2",
            "rl.num_critics=2", "rl.hidden_dim=32", "rl.batch_size=32", "rl.warmup_env_steps=40",
            "rl.critic_warmup_updates=10", "rl.utd=1", "learner.publish_every=10", "learner.min_online_steps=40",
            "learner.progress=false", "match_learner=0"]
    assert finetune.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] >= 160 and {"base", "base+residual"} <= set(summary["eval"])


def test_camera_encoder_misconfigurations_are_clear_errors(camera_base, tmp_path):
    from robotlearn.runtime.assembly import build_learner, image_encoder

    ckpt, _ = camera_base
    with pytest.raises(ValueError, match="rl.encoder=base with base='zero'"):
        image_encoder(RunSpec(env=ENV, base="zero", rl=ResidualConfig(encoder="base")))
    zero_with_encoder = RunSpec(env=ENV, base="zero", rl=ResidualConfig(encoder="base", encoder_checkpoint=ckpt),
                                learner=LearnerConfig(out_dir=str(tmp_path)))
    assert build_learner(zero_with_encoder).features.dim == 16  # from scratch, with the same features
    with pytest.raises(ValueError, match=r"must give images/front \(32, 32, 3\).*nothing"):
        image_encoder(RunSpec(env=ENV, rl=ResidualConfig(encoder="base", encoder_checkpoint=ckpt))) \
            .check_shapes({"state": (18,)}, "env sim/lift")
    with pytest.raises(ValueError, match="rl.encoder must be"):
        ResidualConfig(encoder="resnet")
