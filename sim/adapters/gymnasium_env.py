"""Any gymnasium env with Box observation/action spaces behind `RobotEnv`: `gym/<id>`.

Observations (Box or dict of Boxes) are flattened into `state`; the action box is
rescaled to [-1, 1]. Rewards are the env's own (declared `reward_type="dense"`);
`success` comes from `info["is_success"]`/`info["success"]` when the env reports it.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from robotlearn.envs import STATE_KEY, EnvInfo, RobotEnv, make_observation_space
from sim.adapters.common import BoxRescaler, flatten_obs, normalised_box, seed_from


class GymnasiumEnv(RobotEnv):
    reward_type = "dense"

    def __init__(self, env_id: str, horizon: int | None = None, control_hz: float | None = None,
                 make_kwargs: dict | None = None) -> None:
        super().__init__()
        import gymnasium as gym

        probe = gym.spec(env_id)
        horizon = int(horizon or probe.max_episode_steps or 1000)
        # the inner time limit sits past ours so that truncation is always ours
        self._env = gym.make(env_id, max_episode_steps=horizon + 1, **(make_kwargs or {}))
        act = self._env.action_space
        if not isinstance(act, spaces.Box):
            raise TypeError(f"gym/{env_id}: only Box action spaces are supported, got {act}")
        self._rescale = BoxRescaler(act.low, act.high)
        obs_space = self._env.observation_space
        self._keys = list(obs_space.spaces.keys()) if isinstance(obs_space, spaces.Dict) else None
        state_dim = int(flatten_obs(obs_space.sample(), self._keys).shape[0])
        self.observation_space = make_observation_space(state_dim)
        self.action_space = normalised_box(act.shape[0])
        dt = getattr(self._env.unwrapped, "dt", None)
        hz = control_hz or (1.0 / dt if dt else self._env.metadata.get("render_fps") or 1.0)
        self.env_info = EnvInfo(
            name=f"gym/{env_id}", control_hz=float(hz), horizon=horizon,
            action_spec=self._rescale.action_spec("native"),
            config=dict(env_id=env_id, horizon=horizon, control_hz=control_hz, make_kwargs=make_kwargs or {}),
        )

    def _obs(self, o) -> dict[str, np.ndarray]:
        return {STATE_KEY: flatten_obs(o, self._keys)}

    @staticmethod
    def _success(info: dict) -> bool:
        return bool(info.get("is_success", info.get("success", False)))

    def _reset(self, seed, options):
        o, info = self._env.reset(seed=seed_from(self.np_random, seed))
        return self._obs(o), {"success": self._success(info)}

    def _step(self, action):
        o, r, terminated, _truncated, info = self._env.step(self._rescale(action).astype(np.float32))
        return self._obs(o), float(r), bool(terminated), {"success": self._success(info)}

    def close(self) -> None:
        self._env.close()
