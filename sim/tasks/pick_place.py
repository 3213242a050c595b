"""sim/pick_place: pick a cube and place it into one of two bins (multimodal).

`goal="either"` (default): either bin counts, and the expert picks one at random
per episode, so demonstrations are bimodal. `goal="indicated"`: a target bin is
drawn per episode, shown in the observation (one-hot) and highlighted green.
"""
from __future__ import annotations

import numpy as np

from sim.scene import TABLE_Z, WORLD_COLLISION
from sim.tasks.base import PandaTaskEnv
from sim.tasks.lift import CUBE_FEATURES, CubeTaskMixin, GraspExpert

BIN_Y = (0.22, -0.22)  # left, right
BIN_X = (0.45, 0.55)  # each bin's x is drawn from this range
BIN_HALF = 0.06  # inner half-width (m)
WALL = (0.006, 0.05)  # wall half-thickness, height (m)
CUBE_SPAWN = np.array([[0.42, 0.58], [-0.07, 0.07]])
BIN_RGBA = (0.3, 0.4, 0.8, 1.0)
GOAL_RGBA = (0.2, 0.75, 0.3, 1.0)


class PickPlaceEnv(CubeTaskMixin, PandaTaskEnv):
    """Features: cube pos (3), cube - TCP (3), bin centres xy (2 x 2), goal one-hot (2; [1, 1] = either)."""

    task_name = "sim/pick_place"
    default_horizon = 150
    task_feature_names = CUBE_FEATURES + ("bin0_x", "bin0_y", "bin1_x", "bin1_y", "goal0", "goal1")

    def __init__(self, goal: str = "either", **kwargs) -> None:
        if goal not in ("either", "indicated"):
            raise ValueError(f"sim/pick_place: goal must be 'either' or 'indicated', got {goal!r}")
        self.goal = goal
        super().__init__(**kwargs)
        self.env_info.config["goal"] = goal
        self._cube_init()
        self._bins = [self.model.body(f"bin{i}").id for i in range(2)]
        self._bin_geoms = [[g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] == b] for b in self._bins]
        self.goal_onehot = np.ones(2)

    def _build(self, arena) -> None:
        self._add_cube(arena)
        t, h = WALL
        for i, y in enumerate(BIN_Y):
            b = arena.worldbody.add("body", name=f"bin{i}", mocap=True, pos=[0.5, y, TABLE_Z])
            b.add("geom", name=f"bin{i}_floor", type="box", size=[BIN_HALF + 2 * t, BIN_HALF + 2 * t, 0.002],
                  pos=[0, 0, 0.002], rgba=BIN_RGBA, **WORLD_COLLISION)
            for j, (dx, dy) in enumerate([(1, 0), (-1, 0), (0, 1), (0, -1)]):
                size = [t, BIN_HALF + 2 * t, h / 2] if dx else [BIN_HALF + 2 * t, t, h / 2]
                b.add("geom", name=f"bin{i}_wall{j}", type="box", size=size, rgba=BIN_RGBA,
                      pos=[dx * (BIN_HALF + t), dy * (BIN_HALF + t), h / 2], **WORLD_COLLISION)

    def _randomise(self, rng) -> None:
        self._place_cube(rng, CUBE_SPAWN)
        for i, b in enumerate(self._bins):
            self.data.mocap_pos[self.model.body_mocapid[b]] = [rng.uniform(*BIN_X), BIN_Y[i], TABLE_Z]
        if self.goal == "indicated":
            self.goal_onehot = np.eye(2)[rng.integers(2)]
        for i, geoms in enumerate(self._bin_geoms):
            self.model.geom_rgba[geoms] = GOAL_RGBA if self.goal_onehot[i] and self.goal != "either" else BIN_RGBA

    def bin_centre(self, i: int) -> np.ndarray:
        return self.data.mocap_pos[self.model.body_mocapid[self._bins[i]]].copy()

    def _task_features(self) -> np.ndarray:
        bins = [self.bin_centre(i)[:2] for i in range(2)]
        return np.concatenate([self._cube_features(), *bins, self.goal_onehot])

    def cube_in_bin(self, i: int) -> bool:
        c, b = self.cube_pos, self.bin_centre(i)
        inside = np.all(np.abs(c[:2] - b[:2]) < BIN_HALF)
        return bool(inside and c[2] < TABLE_Z + WALL[1])

    def compute_success(self) -> bool:
        return any(self.cube_in_bin(i) for i in range(2) if self.goal_onehot[i])

    def make_expert(self, noise: float = 0.0, seed: int = 0) -> "PickPlaceExpert":
        return PickPlaceExpert(self, noise, seed)


class PickPlaceExpert(GraspExpert):
    """Grasp (as in lift), carry above the chosen bin, release. Noise also misaims the drop."""

    carry_z = 0.16

    def _episode_start(self) -> None:
        super()._episode_start()
        goal = self.env.goal_onehot
        self.bin = int(self.rng.integers(2)) if goal.all() else int(np.argmax(goal))
        self.drop_offset = self.aim_error(0.03)

    def _after_grasp(self) -> np.ndarray:
        tcp = self.env.tcp_pos
        if self.phase == "lift":
            if tcp[2] > self.carry_z - 0.03:
                self.phase = "carry"
            return self.move_to(np.array([*tcp[:2], self.carry_z]), 1.0)
        above = self.env.bin_centre(self.bin) + self.drop_offset
        above[2] = self.carry_z
        if self.phase == "carry":
            if self.at(above, 0.02):
                self.phase = "release"
            return self.move_to(above, 1.0)
        return self.move_to(above, -1.0)
