"""gym-hil 0.1.14 Panda tasks behind `RobotEnv`: `gym-hil/PandaPickCubeBase` (state observations).

gym-hil's action is [x, y, z, rx, ry, rz, grasp] with x/y/z applied as metres
per step and the rotation ignored; we expose [dx, dy, dz, grasp] in [-1, 1] with
`max_delta` metres per step. Success ("succeed") terminates with reward 1.0; the
env also terminates when the block leaves its region (a failure).
The block position is drawn from numpy's global RNG, so reset seeds that RNG for
the duration of the reset only, which makes seeded resets deterministic.
"""
from __future__ import annotations

import numpy as np

from robotlearn.envs import STATE_KEY, ActionSpec, EnvInfo, RobotEnv, make_observation_space
from sim.adapters.common import flatten_obs, normalised_box, seed_from
from sim.rendering import close_at_exit


class GymHilEnv(RobotEnv):
    reward_type = "sparse"

    def __init__(self, env_id: str = "PandaPickCubeBase-v0", horizon: int = 100, max_delta: float = 0.025,
                 random_block_position: bool = True) -> None:
        super().__init__()
        import gym_hil  # noqa: F401  (registers the gym_hil/* ids)
        import gymnasium as gym

        self._env = gym.make(f"gym_hil/{env_id}", image_obs=False,
                             random_block_position=random_block_position).unwrapped  # our horizon, not its TimeLimit
        if getattr(self._env, "_viewer", None) is not None:  # gym-hil 0.1.14 makes a renderer even without images
            close_at_exit(self._env._viewer)
        self.max_delta = float(max_delta)
        self._keys = ["agent_pos", "environment_state"]
        state_dim = int(flatten_obs(self._env.observation_space.sample(), self._keys).shape[0])
        self.observation_space = make_observation_space(state_dim)
        self.action_space = normalised_box(4)
        d = self.max_delta
        self.env_info = EnvInfo(
            name=f"gym-hil/{env_id.removesuffix('-v0')}", control_hz=1.0 / self._env.control_dt,
            horizon=int(horizon),
            action_spec=ActionSpec(kind="ee_delta_pos+gripper_delta", names=("dx", "dy", "dz", "grasp"),
                                   low=(-d, -d, -d, -1.0), high=(d, d, d, 1.0),
                                   units=("m", "m", "m", "change of gripper command (fraction)")),
            config=dict(env_id=env_id, horizon=int(horizon), max_delta=d, random_block_position=random_block_position),
        )

    def _obs(self, o) -> dict[str, np.ndarray]:
        return {STATE_KEY: flatten_obs(o, self._keys)}

    def _reset(self, seed, options):
        s = seed_from(self.np_random, seed)
        saved = np.random.get_state()
        np.random.seed(s)
        try:
            o, _ = self._env.reset(seed=s)
        finally:
            np.random.set_state(saved)
        return self._obs(o), {"success": False}

    def _step(self, action):
        a = np.zeros(7, np.float32)
        a[:3] = action[:3] * self.max_delta
        a[6] = action[3]
        o, r, terminated, _, info = self._env.step(a)
        success = bool(info.get("succeed", False))
        return self._obs(o), float(success), bool(terminated), {"success": success}

    def sim_time(self) -> float:
        return float(self._env.data.time)  # gym-hil's MuJoCo clock, zeroed by reset

    def close(self) -> None:
        self._env.close()
