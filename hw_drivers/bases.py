"""A scripted joint-space base for reaching over ROS 2 (the dry run's base policy), `base: joint_reach`.

Sim experts act in the sim tasks' end-effector action space; a ROS 2 robot takes
joint deltas, so the dry run needs a base in that space. This one reads the target
offset from the task state (target - TCP, the last 3 state values on the
MuJoCo-served reach task), maps it through a damped least-squares inverse of the
position Jacobian of the robot description's MJCF, and returns normalised joint
deltas. `bias` (a fixed aiming offset in metres) makes it systematically imperfect,
which a residual can learn to correct. Registered in the base registry
(`robotlearn.policies.registry`) when the ROS 2 env is imported.
"""
from __future__ import annotations

import mujoco
import numpy as np

from hw_drivers.kinematics import MujocoFK
from robotlearn.policies.registry import register_base


class JointReachBase:
    action_chunk_size = 1

    def __init__(self, fk: MujocoFK, max_step: np.ndarray, n_joints: int, has_gripper: bool,
                 gain: float = 0.5, damping: float = 0.05, bias=(0.0, 0.0, 0.0)) -> None:
        self.fk, self.max_step, self.n = fk, np.asarray(max_step, float), n_joints
        self.action_dim = n_joints + int(has_gripper)
        self.gain, self.damping, self.bias = gain, damping, np.asarray(bias, float)
        self._jacp = np.zeros((3, fk.model.nv))

    @classmethod
    def for_env(cls, env, **kw) -> "JointReachBase":
        if env.safety.fk is None:
            raise ValueError(f"{env.name}: joint_reach base needs robot.limits.workspace (mjcf + site) for kinematics")
        return cls(env.safety.fk, env.safety.max_step, len(env.names), env.has_gripper, **kw)

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        s = np.asarray(obs["state"], float)
        q, err = s[: self.n], s[-3:] + self.bias  # (n,), target (+ bias) - TCP (3,)
        fk = self.fk
        fk(q)  # kinematics of the private MjData at q
        mujoco.mj_comPos(fk.model, fk.data)  # the Jacobian needs cdof
        mujoco.mj_jacSite(fk.model, fk.data, self._jacp, None, fk.site)
        J = self._jacp[:, fk.dadr]  # (3, n)
        dq = J.T @ np.linalg.solve(J @ J.T + self.damping**2 * np.eye(3), self.gain * err)
        a = np.clip(dq / self.max_step, -1.0, 1.0)
        if self.action_dim > self.n:
            a = np.append(a, -1.0)  # gripper open
        return a[None].astype(np.float32)  # (1, A)


def _joint_reach(env, *, seed: int, arg: str | None, gain: float = 0.5, bias=(0.0, 0.0, 0.0)) -> JointReachBase:
    if not hasattr(env, "safety"):
        raise ValueError(f"base joint_reach drives a ROS 2 robot env (Ros2RobotEnv); {env.name} is not one")
    return JointReachBase.for_env(env, gain=gain, bias=bias)


register_base("joint_reach", _joint_reach, needs_env=True,
              doc="Jacobian reach in joint space on a ROS 2 robot; base_kwargs: gain, bias")
