"""Adapter specifics beyond the conformance suite: action rescaling, reward declaration, RNG hygiene."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from robotlearn.envs import make_env


def test_gym_adapter_rescales_actions_to_native_box():
    env = make_env("gym/Pendulum-v1")
    raw = gym.make("Pendulum-v1")
    assert env.env_info.action_spec.high == (2.0,) and env.reward_type == "dense"
    obs, _ = env.reset(seed=3)
    raw_obs, _ = raw.reset(seed=3)
    np.testing.assert_allclose(obs["state"], raw_obs, rtol=1e-6)
    for a in (1.0, -0.5, 0.25):
        obs, r, *_ = env.step(np.array([a], np.float32))
        raw_obs, raw_r, *_ = raw.step(np.array([2.0 * a], np.float32))  # [-1, 1] -> [-2, 2]
        np.testing.assert_allclose(obs["state"], raw_obs, rtol=1e-5)
        assert abs(r - raw_r) < 1e-5


def test_dmc_sparse_reward_option_and_declared_rate():
    env = make_env("dmc/reacher-easy", reward="sparse", horizon=20)
    assert env.reward_type == "sparse" and env.control_hz == 50.0
    env.reset(seed=0)
    for _ in range(20):
        _, r, term, trunc, info = env.step(env.action_space.sample())
        assert r == float(info["success"]) and r in (0.0, 1.0)
    assert trunc and not term
    dense = make_env("dmc/cartpole-swingup")
    assert dense.reward_type == "dense" and dense.env_info.action_spec.names == ("slide",)


def test_gym_hil_seeds_block_without_touching_global_rng():
    env = make_env("gym-hil/PandaPickCubeBase")
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    blocks = [env.reset(seed=s)[0]["state"][-3:] for s in (0, 1, 0)]
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(blocks[0], blocks[2])
    assert not np.allclose(blocks[0], blocks[1])
    env.close()
