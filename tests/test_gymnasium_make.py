"""robotlearn envs through gymnasium's registry: `gymnasium.make("robotlearn/<group>-<name>-v0", **kwargs)`,
the same env and kwargs as `make_env`, usable by a gymnasium library (stable-baselines3)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import robotlearn  # noqa: F401  (registers the gymnasium ids)
from robotlearn.envs import list_envs, make_env, register_env, registry
from robotlearn.envs.gymnasium_ids import gymnasium_id

CHEAP = ["sim/reach", "sim/lift", "sim/pick_place_proprio", "dmc/cartpole-swingup", "gym/Pendulum-v1"]


def test_every_env_has_a_gymnasium_id():
    for name in list_envs():
        spec = gym.spec(gymnasium_id(name))
        assert spec.kwargs == {"name": name} and spec.max_episode_steps is None  # the env keeps its own horizon
    assert gymnasium_id("gym-hil/PandaPickCubeBase") == "robotlearn/gym-hil-PandaPickCubeBase-v0"


@pytest.mark.parametrize("name", CHEAP)
def test_gymnasium_make_builds_the_same_env_as_make_env(name):
    env, ref = gym.make(gymnasium_id(name)), make_env(name)
    try:
        assert type(env.unwrapped) is type(ref) and env.unwrapped.env_info == ref.env_info
        (o1, i1), (o2, i2) = env.reset(seed=3), ref.reset(seed=3)
        a = np.full(env.action_space.shape, 0.3, np.float32)
        np.testing.assert_array_equal(o1["state"], o2["state"])
        assert i1 == i2
        np.testing.assert_array_equal(env.step(a)[0]["state"], ref.step(a)[0]["state"])
    finally:
        env.close()
        ref.close()


def test_gymnasium_make_passes_make_env_kwargs():
    kw = dict(horizon=6, cameras=["front"], image_size=24, max_delta=0.01)
    env, ref = gym.make("robotlearn/sim-lift-v0", **kw), make_env("sim/lift", **kw)
    try:
        assert env.unwrapped.env_info.config == ref.env_info.config and env.unwrapped.horizon == 6
        obs, _ = env.reset(seed=0)
        assert obs["images/front"].shape == (24, 24, 3)
        zero = np.zeros(4, np.float32)
        steps = 0
        done = False
        while not done:
            *_, term, trunc, _ = env.step(zero)
            steps, done = steps + 1, term or trunc
        assert trunc and steps == 6  # the env's own horizon ends it, as with make_env
    finally:
        env.close()
        ref.close()
    with pytest.raises(ValueError, match="horizont"):  # a bad keyword fails as make_env's does, naming it
        gym.make("robotlearn/sim-reach-v0", horizont=5)


def test_register_env_also_registers_a_gymnasium_id():
    register_env("test/reach_short", lambda **kw: make_env("sim/reach", horizon=3, **kw))
    try:
        env = gym.make("robotlearn/test-reach_short-v0", max_delta=0.01)
        assert env.unwrapped.horizon == 3 and env.unwrapped.max_delta == 0.01
        env.close()
    finally:  # leave the process's registries as they were for the other tests
        registry._FACTORIES.pop("test/reach_short")
        gym.registry.pop("robotlearn/test-reach_short-v0")


def test_stable_baselines3_sac_trains_through_gymnasium_make():
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_checker import check_env

    env = gym.make("robotlearn/sim-reach-v0", horizon=40)
    check_env(env.unwrapped, warn=False)  # SB3's own checker accepts the env too
    model = SAC("MultiInputPolicy", env, learning_starts=100, batch_size=64, buffer_size=1000,
                policy_kwargs=dict(net_arch=[64, 64]), seed=0, device="cpu", verbose=0)
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(total_timesteps=300)
    assert model.num_timesteps == 300 and model.replay_buffer.size() == 300
    episodes = list(model.ep_info_buffer)
    assert len(episodes) >= 7 and all(1 <= e["l"] <= 40 for e in episodes)  # episodes ended by the env
    assert any(not torch.equal(a, b) for a, b in zip(before, model.actor.parameters()))  # it took gradient steps
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(np.float32))
    env.close()
