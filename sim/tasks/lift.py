"""sim/lift: grasp a randomly placed cube and lift it above a height."""
from __future__ import annotations

import numpy as np

from sim.scene import TABLE_Z
from sim.tasks.base import PandaTaskEnv
from sim.tasks.expert import ScriptedExpert

CUBE_HALF = 0.02
CUBE_BOX = np.array([[0.4, 0.6], [-0.15, 0.15]])  # xy spawn region (m)
CUBE_FEATURES = ("cube_x", "cube_y", "cube_z", "cube_minus_tcp_x", "cube_minus_tcp_y", "cube_minus_tcp_z")


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class CubeTaskMixin:
    """A free 4 cm cube: spawn, pose access and observation features (pos 3, cube - TCP 3)."""

    def _add_cube(self, arena) -> None:
        arena.add_box("cube", [CUBE_HALF] * 3, (0.85, 0.2, 0.2, 1), mass=0.05)

    def _cube_init(self) -> None:
        j = self.model.joint("cube")
        self._cube_q = j.qposadr[0]
        self._cube_v = j.dofadr[0]

    def _place_cube(self, rng, box=CUBE_BOX, max_yaw: float = 0.35) -> None:
        xy = rng.uniform(box[:, 0], box[:, 1])
        yaw = rng.uniform(-max_yaw, max_yaw)
        self.data.qpos[self._cube_q:self._cube_q + 7] = [*xy, TABLE_Z + CUBE_HALF, *yaw_quat(yaw)]

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.qpos[self._cube_q:self._cube_q + 3].copy()

    def _cube_features(self) -> np.ndarray:
        c = self.data.qpos[self._cube_q:self._cube_q + 3]
        return np.concatenate([c, c - self.tcp_pos])


class LiftEnv(CubeTaskMixin, PandaTaskEnv):
    """Success: cube centre `lift_height` above its resting height."""

    task_name = "sim/lift"
    default_horizon = 100
    task_feature_names = CUBE_FEATURES

    def __init__(self, lift_height: float = 0.08, **kwargs) -> None:
        self.lift_height = float(lift_height)
        super().__init__(**kwargs)
        self.env_info.config["lift_height"] = self.lift_height
        self._cube_init()

    def _build(self, arena) -> None:
        self._add_cube(arena)

    def _randomise(self, rng) -> None:
        self._place_cube(rng)

    def _task_features(self) -> np.ndarray:
        return self._cube_features()

    def compute_success(self) -> bool:
        return bool(self.data.qpos[self._cube_q + 2] > TABLE_Z + CUBE_HALF + self.lift_height)

    def make_expert(self, noise: float = 0.0, seed: int = 0) -> "GraspExpert":
        return GraspExpert(self, noise, seed)


class GraspExpert(ScriptedExpert):
    """Above cube -> descend -> close -> lift (to `carry_z`); subclasses move on after lifting."""

    carry_z = 0.2

    def _episode_start(self) -> None:
        self.phase = "approach"
        self.wait = 0
        # imprecise grasps: xy offset along the fingers and a grasp that is too high
        self.offset = self.aim_error(0.025)
        self.offset[2] = abs(self.rng.normal(0.0, 0.02 * self.noise))

    def _grasp_point(self) -> np.ndarray:
        return self.env.cube_pos + self.offset

    def _clean_action(self) -> np.ndarray:
        g = self._grasp_point()
        if self.phase == "approach":
            above = g + [0, 0, 0.08]
            if self.at(above, 0.015):
                self.phase = "descend"
            return self.move_to(above, -1.0)
        if self.phase == "descend":
            if self.at(g, 0.008):
                self.phase, self.wait = "close", 0
            return self.move_to(g, -1.0)
        if self.phase == "close":
            self.wait += 1
            if self.wait >= 4:
                self.phase = "lift"
            return self.move_to(g, 1.0)
        return self._after_grasp()

    def _after_grasp(self) -> np.ndarray:
        target = self.env.tcp_pos.copy()
        target[2] = self.carry_z
        return self.move_to(target, 1.0)
