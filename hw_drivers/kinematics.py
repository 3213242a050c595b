"""Forward (and one-step inverse) kinematics from a MuJoCo model.

For the safety layer's workspace box, the TCP position in the state (`env.include_tcp`)
and end-effector actions (`env.action_mode: ee_delta`). The robot node passes the
model it simulates; `Ros2RobotEnv` loads the MJCF named in the robot description.
Both use a private MjData so FK never touches the simulation state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np

from robotlearn.envs.kinematics import DOWN_QUAT, ik_step


class MujocoFK:
    """q (in `joint_names` order) -> position of `site` in the world frame."""

    def __init__(self, model: mujoco.MjModel, joint_names: Sequence[str], site: str) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        try:
            ids = [model.joint(n).id for n in joint_names]
            self.qadr, self.dadr = model.jnt_qposadr[ids], model.jnt_dofadr[ids]
            self.site = model.site(site).id
        except KeyError as e:
            raise ValueError(f"forward kinematics: {e} (joints {list(joint_names)}, site {site!r})") from e

    @classmethod
    def from_mjcf(cls, path: str | Path, joint_names: Sequence[str], site: str) -> "MujocoFK":
        from hw_drivers.config import ParamError

        if not str(path).strip() or not site:
            raise ParamError("forward kinematics needs robot.limits.workspace.mjcf (a model file) and .site "
                             f"(the end-effector site), got mjcf={str(path)!r} site={site!r}")
        path = Path(path)
        if not path.is_absolute() and not path.exists():
            path = Path(__file__).resolve().parents[1] / path  # relative to the repo root
        if not path.is_file():
            raise ParamError(f"robot.limits.workspace.mjcf: no model file {path}")
        try:
            model = mujoco.MjModel.from_xml_path(str(path))
        except ValueError as e:
            raise ParamError(f"robot.limits.workspace.mjcf {path} does not load: {str(e).splitlines()[0]}") from None
        return cls(model, joint_names, site)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy()

    def ik(self, q: np.ndarray, target_pos: np.ndarray, target_quat=DOWN_QUAT, home_q=None) -> np.ndarray:
        """Joint targets one damped-least-squares step from `q` towards the TCP pose (the sim tasks' IK)."""
        self(q)
        mujoco.mj_comPos(self.model, self.data)  # the Jacobian needs cdof
        return ik_step(self.model, self.data, self.site, self.qadr, self.dadr, target_pos, target_quat, home_q)
