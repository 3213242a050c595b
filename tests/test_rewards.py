"""Learned success rewards: a classifier trained on real MuJoCo camera frames, reloaded without pickle, and
used as the reward source of an env (k positive frames in a row end the episode, not fewer)."""
import json

import numpy as np
import pytest
import torch

from robotlearn.envs import make_env
from robotlearn.envs.registry import env_config
from robotlearn.rewards.classifier import load_classifier, step_labels
from robotlearn.rewards.sources import INFO_ENV_SUCCESS, ClassifierReward, with_reward

torch.set_num_threads(1)
ENV = {**env_config("sim/lift"), "obs": "proprio", "cameras": ["front"], "image_size": 32}


@pytest.fixture(scope="module")
def camera_demos(tmp_path_factory):
    """Successful and failed sim/lift episodes with the cube only in a 32x32 camera."""
    from robotlearn.cli.collect import CollectConfig, collect

    path = tmp_path_factory.mktemp("reward") / "lift_cam.zarr"
    collect(CollectConfig(env=ENV, episodes=4, noise=0.05, out=str(path), progress=False))
    collect(CollectConfig(env={**ENV, "horizon": 30}, episodes=7, noise=1.0, seed=50, out=str(path), progress=False))
    return path


def test_step_labels_mark_the_last_k_steps_of_successful_episodes():
    y = step_labels(np.array([4, 7, 10]), np.array([True, False, True]), last_k=2)
    assert y.tolist() == [False, False, True, True, False, False, False, False, True, True]
    per_step = np.array([0, 1, 0, 1], bool)
    assert step_labels(np.array([4]), np.array([False]), 2, per_step).tolist() == per_step.tolist()


def test_train_reward_lowers_the_loss_and_reloads_to_the_same_probabilities(camera_demos, tmp_path, capsys):
    from robotlearn.cli import train_reward
    from robotlearn.data import EpisodeDataset

    out = tmp_path / "rw"
    assert train_reward.main([f"dataset={camera_demos}", f"out_dir={out}", "steps=60", "batch_size=16",
                              "holdout=0.3", "progress=false"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["last_loss"] < m["first_loss"]
    assert {"precision", "recall", "f1"} <= set(m["held_out"]) and m["held_out"]["frames"] > 0
    assert (out / "calibration.png").stat().st_size > 1000
    assert "precision" in capsys.readouterr().out
    clf = load_classifier(out / "classifier")
    frames = EpisodeDataset(camera_demos).load(["images/front", "state"])
    p1 = clf.prob(frames)
    p2 = load_classifier(out / "classifier").prob(frames)
    assert p1.shape == (len(frames["state"]),) and np.all((p1 >= 0) & (p1 <= 1))
    np.testing.assert_array_equal(p1, p2)
    env = with_reward(make_env({**ENV, "terminate_on_success": False}), f"classifier:{out / 'classifier'}")
    obs, _ = env.reset(seed=1)
    _, _, _, _, info = env.step(np.zeros(4, np.float32))
    assert 0.0 <= info["success_prob"] <= 1.0 and info["reward_source"] == "classifier"
    env.close()
    (out / "classifier" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(Exception, match="cannot read weights"):
        load_classifier(out / "classifier")


class ScriptedDetector:
    """Stands in for a trained classifier with a known verdict sequence (the wrapper's logic under test)."""

    def __init__(self, probs, obs_shapes, k):
        from robotlearn.rewards.classifier import ClassifierConfig

        self.probs, self.obs_shapes, self.cfg = list(probs), obs_shapes, ClassifierConfig(consecutive=k)

    def __call__(self, obs):
        return self.probs.pop(0)


def test_classifier_reward_ends_the_episode_after_k_positive_frames_and_not_before():
    env = make_env({**ENV, "terminate_on_success": False})
    shapes = {"images/front": (32, 32, 3)}
    probs = [0.9, 0.9, 0.1, 0.8, 0.9, 0.95, 0.2]  # two positives, a miss, then three in a row
    wrapped = ClassifierReward(env, ScriptedDetector(probs, shapes, k=3))
    wrapped.reset(seed=0)
    rewards, dones = [], []
    for _ in range(6):
        _, r, term, trunc, info = wrapped.step(np.zeros(4, np.float32))
        rewards.append(r)
        dones.append(term)
        assert INFO_ENV_SUCCESS in info and info["reward_source"] == "classifier"
        if term:
            break
    assert rewards == [0, 0, 0, 0, 0, 1.0] and dones == [False] * 5 + [True]
    with pytest.raises(ValueError, match="reads"):
        ClassifierReward(env, ScriptedDetector([], {"images/wrist": (32, 32, 3)}, k=1))
    with pytest.raises(ValueError, match="expected one of"):
        with_reward(env, "oracle")
    assert with_reward(env, "env") is env
    wrapped.close()


def test_the_episode_log_records_which_source_gave_the_reward(tmp_path):
    """An actor on a classifier-rewarded env tags its episodes; the learner's zarr log keeps the tag."""
    from robotlearn.data import EpisodeDataset
    from robotlearn.policies.base import ZeroPolicy
    from robotlearn.rl.residual import ResidualConfig
    from robotlearn.runtime.actor import Actor, ActorConfig
    from robotlearn.runtime.learner import Learner, LearnerConfig
    from robotlearn.runtime.messages import Episode

    env = make_env({**ENV, "horizon": 4, "terminate_on_success": False})
    wrapped = ClassifierReward(env, ScriptedDetector([0.1] * 20, {"images/front": (32, 32, 3)}, k=2))
    actor = Actor(wrapped, ZeroPolicy(4), ResidualConfig(warmup_env_steps=0), ActorConfig())
    payloads = [p for p in (actor.step() for _ in range(8)) if p is not None]
    assert [Episode.decode(p).reward_source for p in payloads] == ["classifier", "classifier"]
    L = Learner(None, ResidualConfig(), LearnerConfig(out_dir=str(tmp_path), tensorboard=False, progress=False),
                env.env_info, env.observation_space)
    assert L.ingest(payloads) == 8
    L.close()
    ds = EpisodeDataset(tmp_path / "online.zarr")
    assert [ds.episode_meta(i)["reward_source"] for i in range(2)] == ["classifier", "classifier"]
    wrapped.close()


def test_label_reward_needs_a_label_input(capsys):
    from robotlearn.cli import collect
    from robotlearn.config import ConfigError
    from robotlearn.envs import make_env
    from robotlearn.rewards.sources import with_reward
    from robotlearn.runtime.spec import RunSpec

    env = make_env("sim/reach")
    try:
        with pytest.raises(ConfigError, match="reward=label: env 'sim/reach' has no human label input"):
            with_reward(env, "label")
    finally:
        env.close()
    assert RunSpec(env="sim/reach", reward="label").reward == "label"
    with pytest.raises(ConfigError, match="expected env, label or classifier"):
        RunSpec(env="sim/reach", reward="human")
    with pytest.raises(SystemExit):
        collect.main(["env=sim/reach", "episodes=1", "reward=label", "out=/tmp/never.zarr", "progress=off"])
    assert "reward=label: env 'sim/reach' has no human label input" in capsys.readouterr().err
