"""End-effector control shared by the sim tasks and ROS 2 robots: one damped-least-squares IK step.

A sim task runs it on its live MjData; `Ros2RobotEnv` (`action_mode: ee_delta`) on a
private MjData of the robot's MJCF set to the measured joints. Same math, same
`ee_delta_pos+gripper` action, so a policy trained in sim acts the same on the robot.
"""
from __future__ import annotations

import mujoco
import numpy as np

DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # TCP frame: x forward, z down (world frame), wxyz

# Where an ee_delta step starts from (`ee_integrate` in the sim tasks and in a ROS 2 robot's env params):
#   false  the measured TCP + the step: a servo that lags within a control period falls short of the
#          commanded steps (the sim Panda covers 68-80 mm of 20 x 5 mm), and a zero action holds the TCP
#          where it happens to be
#   true   the previous step's target + the step, kept within one full step (max_delta per axis) of the
#          measured TCP: once the servo catches up the TCP has moved by the sum of the commanded steps, and
#          a TCP blocked by contact pushes no harder than without integration


def ee_action_kind(integrate: bool) -> str:
    """The ActionSpec kind (before "+gripper") of ee_delta actions: integrated or not, the same numbers execute
    differently, so checkpoints move only between envs that agree."""
    return "ee_delta_pos_integrated" if integrate else "ee_delta_pos"


def tcp_target(integrate: bool, measured: np.ndarray, previous: np.ndarray | None, delta: np.ndarray,
               low: np.ndarray, high: np.ndarray, max_lead: float) -> np.ndarray:
    """The TCP position (3,) an ee_delta step of `delta` (3,) m aims at, inside the box [low, high].

    `previous` is the last step's target (None after a reset: start from the measured TCP).
    """
    integrated = integrate and previous is not None
    target = np.clip((previous if integrated else measured) + delta, low, high)
    if integrated:
        target = np.clip(target, measured - max_lead, measured + max_lead)
    return target


def ik_step(model: mujoco.MjModel, data: mujoco.MjData, site: int, qadr: np.ndarray, dadr: np.ndarray,
            target_pos: np.ndarray, target_quat: np.ndarray = DOWN_QUAT, home_q: np.ndarray | None = None,
            damping: float = 0.05, null_gain: float = 0.3) -> np.ndarray:
    """Joint targets (n,) moving `site` towards `target_pos` with orientation `target_quat`.

    `data` must hold current kinematics (mj_kinematics + mj_comPos). `home_q` (n,) pulls the
    posture towards it in the Jacobian's null space (None: no pull).
    dq = J+ err + (I - J+ J) v with J+ = J^T A^-1, A = J J^T + damping^2 I
       = J^T A^-1 (err - J v) + v; one 6x6 Cholesky solve (mju_*: no BLAS thread overhead).
    """
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jacp, jacr, site)
    J = np.vstack([jacp[:, dadr], jacr[:, dadr]])  # (6, n)
    xmat = data.site_xmat[site]
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, xmat)
    rot_err = np.empty(3)
    mujoco.mju_subQuat(rot_err, np.asarray(target_quat, float), quat)  # in the site frame
    rot_err = xmat.reshape(3, 3) @ rot_err  # -> world frame, like jacr
    err = np.concatenate([np.asarray(target_pos, float) - data.site_xpos[site], rot_err])  # (6,)
    q = data.qpos[qadr]
    v = np.zeros(len(qadr)) if home_q is None else null_gain * (np.asarray(home_q, float) - q)
    A = J @ J.T
    A[np.diag_indices(6)] += damping**2
    mujoco.mju_cholFactor(A, 0.0)
    x = np.empty(6)
    mujoco.mju_cholSolve(x, A, err - J @ v)
    return q + J.T @ x + v
