"""dm_control suite behind `RobotEnv`: `dmc/<domain>-<task>` = `suite.load(domain, task)`.

Observations are flattened into `state` (in the suite's key order), actions are
rescaled from [-1, 1] to the task's bounds. dm_control rewards are dense in
[0, 1]; `reward="dense"` passes them through (declared shaping) and
`reward="sparse"` gives 1.0 when the reward reaches `success_threshold`.
`success` is always `reward >= success_threshold`; these are continuing-control
tasks, so success only terminates with `terminate_on_success=True`.
"""
from __future__ import annotations

import numpy as np

from robotlearn.envs import STATE_KEY, EnvInfo, RobotEnv, make_observation_space
from sim.adapters.common import BoxRescaler, flatten_obs, normalised_box, seed_from


class DMCEnv(RobotEnv):
    def __init__(self, domain: str, task: str, horizon: int = 500, reward: str = "dense",
                 success_threshold: float = 0.9, terminate_on_success: bool = False) -> None:
        super().__init__()
        from dm_control import suite

        if reward not in ("dense", "sparse"):
            raise ValueError(f"dmc/{domain}-{task}: reward must be 'dense' or 'sparse', got {reward!r}")
        # the time limit is ours (horizon), not dm_control's
        self._env = suite.load(domain, task, task_kwargs={"time_limit": float("inf")})
        self.reward_type = reward
        self.success_threshold = float(success_threshold)
        self.terminate_on_success = bool(terminate_on_success)
        spec = self._env.action_spec()
        self._rescale = BoxRescaler(spec.minimum, spec.maximum)
        self._keys = list(self._env.observation_spec().keys())
        state_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = make_observation_space(state_dim)
        self.action_space = normalised_box(spec.shape[0])
        self.physics = self._env.physics
        self.env_info = EnvInfo(
            name=f"dmc/{domain}-{task}",
            control_hz=1.0 / self._env.control_timestep(),
            horizon=int(horizon),
            action_spec=self._rescale.action_spec(
                "actuator_ctrl", [self.physics.model.id2name(i, "actuator") or f"a{i}" for i in range(spec.shape[0])]
            ),
            config=dict(domain=domain, task=task, horizon=int(horizon), reward=reward,
                        success_threshold=self.success_threshold, terminate_on_success=self.terminate_on_success),
        )

    def _obs(self, ts) -> dict[str, np.ndarray]:
        return {STATE_KEY: flatten_obs(ts.observation, self._keys)}

    def _reset(self, seed, options):
        self._env.task._random = np.random.RandomState(seed_from(self.np_random, seed))
        return self._obs(self._env.reset()), {"success": False}

    def _step(self, action):
        ts = self._env.step(self._rescale(action))
        r = float(ts.reward or 0.0)
        success = r >= self.success_threshold
        reward = r if self.reward_type == "dense" else float(success)
        terminated = (success and self.terminate_on_success) or (ts.last() and ts.discount == 0.0)
        return self._obs(ts), reward, bool(terminated), {"success": success}

    def sim_time(self) -> float:
        return float(self.physics.data.time)  # dm_control's physics clock, zeroed by reset
