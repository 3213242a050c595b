"""robosuite 1.5 tasks behind `RobotEnv`: `robosuite/<Task>` (e.g. Lift with Panda), state observations.

robosuite's default Panda controller is OSC_POSE: 6 end-effector deltas (scaled
to +-5 cm / +-0.5 rad) + gripper, already in [-1, 1]. Reward is sparse (1.0 on
`_check_success`), success terminates. Seeding reseeds robosuite's own RNG
in place (its placement sampler holds a reference to it).
"""
from __future__ import annotations

import logging

import numpy as np

from robotlearn.envs import STATE_KEY, ActionSpec, EnvInfo, RobotEnv, make_observation_space
from sim.adapters.common import normalised_box, seed_from

OBS_KEYS = ("robot0_proprio-state", "object-state")


class _ImportNoise(logging.Filter):
    """robosuite 1.5.2 logs five warnings when imported, about extras this adapter does not use (a private
    macros file, robosuite_models, the GR1 robot's mink IK), and one line per env naming its controller
    file. Those records are dropped; every other robosuite record passes."""

    NOISE = ("private macro file", "setup_macros.py", "robosuite_models", "mink-based whole-body IK",
             "Loading controller configuration")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NOISE)


_QUIET = _ImportNoise()


class RobosuiteEnv(RobotEnv):
    reward_type = "sparse"

    def __init__(self, task: str = "Lift", robot: str = "Panda", horizon: int = 200,
                 control_hz: float = 20.0) -> None:
        super().__init__()
        logging.getLogger("robosuite_logs").addFilter(_QUIET)  # before the import: it logs while importing
        import robosuite

        self._env = robosuite.make(
            task, robots=robot, has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False,
            use_object_obs=True, reward_shaping=False, control_freq=int(control_hz), horizon=10**9,
            ignore_done=True, hard_reset=False, seed=0,
        )
        low, high = self._env.action_spec
        if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):
            raise ValueError(f"robosuite/{task}: expected a [-1, 1] action spec, got {low}..{high}")
        obs = self._env.reset()
        state_dim = sum(obs[k].size for k in OBS_KEYS)
        self.observation_space = make_observation_space(int(state_dim))
        self.action_space = normalised_box(low.shape[0])
        n = low.shape[0]
        names = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")[:n] if n == 7 else tuple(f"a{i}" for i in range(n))
        phys = (0.05, 0.05, 0.05, 0.5, 0.5, 0.5, 1.0)[:n] if n == 7 else (1.0,) * n
        self.env_info = EnvInfo(
            name=f"robosuite/{task}", control_hz=float(control_hz), horizon=int(horizon),
            action_spec=ActionSpec(kind="osc_pose_delta+gripper" if n == 7 else "robosuite_native", names=names,
                                   low=tuple(-p for p in phys), high=phys),
            config=dict(task=task, robot=robot, horizon=int(horizon), control_hz=float(control_hz)),
        )

    def _obs(self, obs) -> dict[str, np.ndarray]:
        return {STATE_KEY: np.concatenate([obs[k] for k in OBS_KEYS]).astype(np.float32)}

    def _reset(self, seed, options):
        fresh = np.random.default_rng(seed_from(self.np_random, seed))
        self._env.rng.bit_generator.state = fresh.bit_generator.state  # shared with the placement sampler
        return self._obs(self._env.reset()), {"success": False}

    def _step(self, action):
        obs, _, _, _ = self._env.step(np.asarray(action, np.float64))
        success = bool(self._env._check_success())
        return self._obs(obs), float(success), success, {"success": success}

    def sim_time(self) -> float:
        return float(self._env.sim.data.time)  # robosuite's physics clock, zeroed by reset

    def close(self) -> None:
        self._env.close()
