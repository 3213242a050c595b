"""sim/reach: move the TCP to a randomised target point (a red marker)."""
from __future__ import annotations

import numpy as np

from sim.tasks.base import PandaTaskEnv
from sim.tasks.expert import ScriptedExpert

TARGET_BOX = np.array([[0.3, 0.65], [-0.25, 0.25], [0.05, 0.35]])


class ReachEnv(PandaTaskEnv):
    """Success: TCP within `tolerance` of the target. Features: target pos (3), target - TCP (3)."""

    task_name = "sim/reach"
    default_horizon = 50
    task_feature_names = ("target_x", "target_y", "target_z",
                          "target_minus_tcp_x", "target_minus_tcp_y", "target_minus_tcp_z")

    def __init__(self, tolerance: float = 0.025, **kwargs) -> None:
        self.tolerance = float(tolerance)
        super().__init__(**kwargs)
        self.env_info.config["tolerance"] = self.tolerance
        self._mocap = self.model.body("target").mocapid[0]

    def _build(self, arena) -> None:
        arena.add_target("target", self.tolerance, (0.9, 0.1, 0.1, 0.6))

    def _randomise(self, rng) -> None:
        self.data.mocap_pos[self._mocap] = rng.uniform(TARGET_BOX[:, 0], TARGET_BOX[:, 1])

    @property
    def target_pos(self) -> np.ndarray:
        return self.data.mocap_pos[self._mocap].copy()

    def _task_features(self) -> np.ndarray:
        t = self.data.mocap_pos[self._mocap]
        return np.concatenate([t, t - self.tcp_pos])

    def compute_success(self) -> bool:
        return bool(np.linalg.norm(self.target_pos - self.tcp_pos) < self.tolerance)

    def make_expert(self, noise: float = 0.0, seed: int = 0) -> "ReachExpert":
        return ReachExpert(self, noise, seed)


class ReachExpert(ScriptedExpert):
    """Go straight to the target; noise adds jitter and a per-episode aiming error."""

    def _episode_start(self) -> None:
        err = self.aim_error(0.04)
        err[2] = self.rng.normal(0.0, 0.04 * self.noise)
        self._aim = err

    def _clean_action(self) -> np.ndarray:
        return self.move_to(self.env.target_pos + self._aim, gripper=-1.0)
