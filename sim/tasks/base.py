"""Shared Panda table-top task: end-effector delta control through damped-least-squares IK.

Action (normalised [-1, 1]^4): [dx, dy, dz, gripper] -> TCP displacement of up to
`max_delta` metres per control step plus a gripper command (-1 open, +1 closed).
Each control step solves one DLS IK step for the displaced TCP (from the measured TCP, or
with `ee_integrate=True` from the last target; orientation held
pointing down) and sends the joint targets to the position actuators; physics
then runs `n_substeps` x 2 ms. The joint-level methods (`set_joint_targets`,
`physics_step`, `compute_success`, `get_obs`) are what a ROS 2 node uses to
serve this arm as a robot, bypassing the EE controller.

State observation (float32): joint pos (7), joint vel (7), TCP pos (3),
gripper width (1) (`proprio_state_names`: what a robot driver provides), then, with
`obs="privileged"` (the default), the task features (`_task_features`: object and goal
poses a real robot does not have). `obs="proprio"` leaves them out: objects are then
seen only through the cameras, exactly as `Ros2RobotEnv` sees them.
"""
from __future__ import annotations

from typing import Sequence

import mujoco
import numpy as np
from gymnasium import spaces

from robotlearn.envs import (
    IMAGE_PREFIX,
    STATE_KEY,
    ActionSpec,
    EnvInfo,
    RobotEnv,
    make_observation_space,
    proprio_state_names,
)
from robotlearn.envs.interface import INFO_INTERVENTION, INFO_INTERVENTION_ACTION, INFO_SUCCESS
from robotlearn.envs.kinematics import DOWN_QUAT, ee_action_kind, ik_step, tcp_target
from sim.rendering import offscreen_renderer
from sim.scene import PREFIX, Arena

ARM_JOINTS = tuple(f"{PREFIX}joint{i}" for i in range(1, 8))
# a comfortable start pose: TCP ~(0.45, 0, 0.25), fingers pointing down
HOME_Q = np.array([0.0, -0.1848, 0.0, -2.4967, 0.0, 2.3119, 0.7854])
WORKSPACE = np.array([[0.25, 0.75], [-0.35, 0.35], [0.012, 0.45]])  # TCP target box (m)
MAX_WIDTH = 0.08  # fully open gripper width (m)
CAMERAS = ("front", "side", "wrist")  # obs keys images/<name>
OBS_MODES = ("privileged", "proprio")


def off_path(policy_move: np.ndarray, expert_move: np.ndarray) -> float:
    """Distance (m) from where the policy's move ends to the expert's move as a segment from the start:
    zero for a move along the expert's direction, however short; the full move for one against it."""
    e2 = float(expert_move @ expert_move)
    t = 0.0 if e2 < 1e-12 else float(np.clip(policy_move @ expert_move / e2, 0.0, 1.0))
    return float(np.linalg.norm(policy_move - t * expert_move))


class PandaTaskEnv(RobotEnv):
    """Base class of the `sim/` Panda tasks. Subclasses add objects and define success."""

    task_name = "sim/base"
    reward_type = "sparse"  # 1.0 on success (which terminates), else 0.0
    default_horizon = 50
    task_feature_names: tuple[str, ...] = ()  # a name per `_task_features` value
    # reset posture and the EE controller's null-space pull (a ROS 2 robot serving the task sets ee_home_q to it)
    home_q: np.ndarray = HOME_Q

    def __init__(
        self,
        horizon: int | None = None,
        cameras: Sequence[str] = (),
        image_size: int = 84,
        max_delta: float = 0.02,
        control_hz: float = 20.0,
        init_joint_noise: float = 0.02,
        obs: str = "privileged",
        intervene: str = "none",
        intervene_stray_m: float = 0.04,
        intervene_steps: int = 10,
        intervene_p: float = 0.0,
        intervene_after: int = 0,
        terminate_on_success: bool = True,
        action_latency_s: float = 0.0,
        ee_integrate: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(ee_integrate, bool):
            raise ValueError(f"{self.task_name}: ee_integrate must be true or false, got {ee_integrate!r}")
        self.ee_integrate = ee_integrate  # steps from the last target, not the measured TCP (envs/kinematics.py)
        self._ee_ref: np.ndarray | None = None  # the last step's TCP target (None: none since the reset)
        if obs not in OBS_MODES:
            raise ValueError(f"{self.task_name}: obs must be one of {OBS_MODES}, got {obs!r}")
        if intervene not in ("none", "expert"):
            raise ValueError(f"{self.task_name}: intervene must be 'none' or 'expert', got {intervene!r}")
        if intervene_stray_m < 0 or intervene_steps < 1 or not 0.0 <= intervene_p <= 1.0 or intervene_after < 0:
            raise ValueError(f"{self.task_name}: need intervene_stray_m >= 0, intervene_steps >= 1, "
                             f"0 <= intervene_p <= 1 and intervene_after >= 0 (got {intervene_stray_m}, "
                             f"{intervene_steps}, {intervene_p}, {intervene_after})")
        self.obs_mode = obs
        # A simulated human (intervene="expert"): the task's clean scripted expert, flagged through
        # INFO_INTERVENTION / INFO_INTERVENTION_ACTION like a teleop device. It takes over
        # - for `intervene_steps` steps once the policy's last 5 TCP steps end more than `intervene_stray_m`
        #   metres off the expert's path over those steps (a drift, not jitter that cancels out; slower than the
        #   expert along its path is not straying, as a teleoperator would not take over a slow robot on its
        #   way); 0 = never for straying;
        # - for `intervene_steps` steps at the start of an episode with probability `intervene_p`;
        # - with `intervene_after` > 0, once the episode has run that many steps without success: the patient
        #   human lets the policy try, then finishes the episode from where it is (its phases started afresh).
        #   Only failing episodes are helped, so the share of steps it drives falls as the policy improves.
        self.accepts_interventions = intervene == "expert"
        self.intervene_stray_m, self.intervene_steps, self.intervene_p = intervene_stray_m, intervene_steps, intervene_p
        self.intervene_after = int(intervene_after)
        self._human = None
        self.terminate_on_success = bool(terminate_on_success)  # false: only a learned detector ends episodes
        arena = Arena(self.task_name.replace("/", "_"))
        self._build(arena)
        self.model = arena.compile()
        self.data = mujoco.MjData(self.model)
        substeps = 1.0 / (control_hz * self.model.opt.timestep)
        if not (control_hz > 0 and substeps >= 1 and abs(substeps - round(substeps)) < 1e-6):
            raise ValueError(f"{self.task_name}: control_hz={control_hz} must divide the physics rate "
                             f"{1 / self.model.opt.timestep:.0f} Hz (e.g. 10, 20, 50, 100, 500)")
        self.n_substeps = int(round(substeps))
        # Observation-to-command latency of a real stack (state age + policy + transport): physics runs this
        # long under the previous command before the new one applies. 0 = the command applies at once.
        self.latency_substeps = int(round(action_latency_s / self.model.opt.timestep))
        if not 0 <= self.latency_substeps < self.n_substeps:
            raise ValueError(f"{self.task_name}: action_latency_s={action_latency_s} must be in [0, one control "
                             f"period = {1 / control_hz:g} s)")
        self.max_delta = float(max_delta)
        self.init_joint_noise = float(init_joint_noise)
        self.cameras = tuple(cameras)
        self.image_size = int(image_size)
        self._renderer: mujoco.Renderer | None = None
        self._episode = 0

        m = self.model
        self.arm_joint_names = list(ARM_JOINTS)
        jids = [m.joint(n).id for n in ARM_JOINTS]
        self._qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self._dadr = np.array([m.jnt_dofadr[j] for j in jids])
        self.joint_limits = m.jnt_range[jids].copy()  # (7, 2) rad
        self._finger_qadr = np.array([m.jnt_qposadr[m.joint(f"{PREFIX}finger_joint{i}").id] for i in (1, 2)])
        self._tcp = m.site(f"{PREFIX}tcp").id
        for cam in self.cameras:
            self.camera_id(cam)  # fail at construction on a typo

        self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        state_names = proprio_state_names(7) + (self.task_feature_names if obs == "privileged" else ())
        state_dim = len(state_names)
        self.observation_space = make_observation_space(
            state_dim, {c: (self.image_size, self.image_size) for c in self.cameras}
        )
        d = self.max_delta
        self.env_info = EnvInfo(
            name=self.task_name,
            control_hz=float(control_hz),
            horizon=int(horizon or self.default_horizon),
            action_spec=ActionSpec(
                kind=ee_action_kind(ee_integrate) + "+gripper",
                names=("dx", "dy", "dz", "gripper"),
                low=(-d, -d, -d, MAX_WIDTH),
                high=(d, d, d, 0.0),
                units=("m", "m", "m", "m gripper width target (-1 open, +1 closed)"),
            ),
            config=dict(horizon=int(horizon or self.default_horizon), cameras=list(self.cameras),
                        image_size=self.image_size, max_delta=self.max_delta, control_hz=float(control_hz),
                        init_joint_noise=self.init_joint_noise, obs=obs, intervene=intervene,
                        intervene_stray_m=intervene_stray_m, intervene_steps=intervene_steps,
                        intervene_p=intervene_p, intervene_after=self.intervene_after,
                        terminate_on_success=self.terminate_on_success,
                        action_latency_s=float(action_latency_s), ee_integrate=ee_integrate),
            state_names=state_names,
        )

    # --- task hooks -------------------------------------------------------
    def _build(self, arena: Arena) -> None:
        """Add task objects to the arena (before compile)."""

    def _randomise(self, rng: np.random.Generator) -> None:
        """Place objects/goals for a new episode (qpos/mocap already reset)."""

    def _task_features(self) -> np.ndarray:
        return np.zeros(0)

    def compute_success(self) -> bool:
        raise NotImplementedError

    def make_expert(self, noise: float = 0.0, seed: int = 0):
        raise NotImplementedError

    # --- joint-level interface (used by the ROS 2 robot node) -----------
    def set_joint_targets(self, q_target, gripper: float) -> None:
        """Position targets for the 7 arm joints (rad, clipped to limits) and gripper in [-1, 1]."""
        q = np.asarray(q_target, dtype=float)
        if q.shape != (7,) or not np.all(np.isfinite(q)):
            raise ValueError(f"{self.task_name}: q_target must be 7 finite values, got {q_target!r}")
        if not np.isfinite(gripper):
            raise ValueError(f"{self.task_name}: gripper command must be finite, got {gripper!r}")
        self.data.ctrl[:7] = np.clip(q, self.joint_limits[:, 0], self.joint_limits[:, 1])
        g = float(np.clip(gripper, -1.0, 1.0))
        self.data.ctrl[7] = 0.5 * MAX_WIDTH * 0.5 * (1.0 - g)  # per-finger opening

    def physics_step(self, nstep: int | None = None) -> None:
        """Advance physics by one control period (n_substeps x timestep), or `nstep` physics steps."""
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps if nstep is None else nstep)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    @property
    def qpos(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    @property
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._tcp].copy()

    @property
    def gripper_width(self) -> float:
        return float(self.data.qpos[self._finger_qadr].sum())

    def get_obs(self) -> dict[str, np.ndarray]:
        d = self.data
        task = self._task_features() if self.obs_mode == "privileged" else ()
        state = np.concatenate([
            d.qpos[self._qadr], d.qvel[self._dadr], d.site_xpos[self._tcp], [self.gripper_width], task,
        ]).astype(np.float32)
        obs = {STATE_KEY: state}
        for cam in self.cameras:
            obs[IMAGE_PREFIX + cam] = self.render_camera(cam)
        return obs

    def camera_id(self, camera: str) -> int:
        """MuJoCo id of an obs camera name ("wrist" is the attached robot's "panda/wrist")."""
        ids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, n) for n in (camera, PREFIX + camera)]
        if max(ids) < 0:
            raise ValueError(f"{self.task_name}: unknown camera {camera!r}; have {', '.join(CAMERAS)}")
        return max(ids)

    def render_camera(self, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 image from one of CAMERAS (needs MUJOCO_GL=egl/osmesa when headless)."""
        if self._renderer is None:
            self._renderer = offscreen_renderer(self.model, self.image_size, self.image_size)  # closed at exit
        self._renderer.update_scene(self.data, camera=self.camera_id(camera))
        return self._renderer.render().copy()

    # --- EE controller ----------------------------------------------------
    def ik_joint_targets(self, tcp_target: np.ndarray, damping: float = 0.05, null_gain: float = 0.3):
        """One damped-least-squares step: joint targets moving the TCP to `tcp_target`, pointing down."""
        return ik_step(self.model, self.data, self._tcp, self._qadr, self._dadr, tcp_target, DOWN_QUAT, self.home_q,
                       damping, null_gain)

    @property
    def ee_reference(self) -> np.ndarray:
        """Where a zero action holds the TCP: the measured TCP, or with ee_integrate the last target. Scripted
        experts step from it, so they act the same either way."""
        return self._ee_ref.copy() if self.ee_integrate and self._ee_ref is not None else self.tcp_pos

    def apply_action(self, action: np.ndarray) -> None:
        """Normalised [dx, dy, dz, gripper] -> IK joint targets + gripper command."""
        target = tcp_target(self.ee_integrate, self.tcp_pos, self._ee_ref, action[:3] * self.max_delta,
                            WORKSPACE[:, 0], WORKSPACE[:, 1], self.max_delta)
        self._ee_ref = target
        self.set_joint_targets(self.ik_joint_targets(target), float(action[3]))

    # --- RobotEnv hooks ---------------------------------------------------
    def _reset(self, seed, options):
        rng = self.np_random
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q0 = self.home_q + rng.uniform(-1, 1, 7) * self.init_joint_noise
        d.qpos[self._qadr] = q0
        d.qpos[self._finger_qadr] = MAX_WIDTH / 2
        self._randomise(rng)
        mujoco.mj_forward(m, d)
        self.set_joint_targets(q0, -1.0)
        self._ee_ref = None
        self._episode += 1
        if self.accepts_interventions:
            if self._human is None:  # noise 0: its seed changes nothing; no draw from rng, so episode 1 is as any other
                self._human = self.make_expert(noise=0.0, seed=0)
            self._human.reset()
            self._takeover = self.intervene_steps if rng.random() < self.intervene_p else 0
            self._stray: list[np.ndarray] = []  # the last 5 steps' (policy, expert) TCP moves, (2, 3) m
            self._steps, self._rescue = 0, False  # steps this episode; the patient human has taken over
        return self.get_obs(), {"success": False}

    def _step(self, action):
        info = {}
        if self.accepts_interventions:
            action = self._maybe_take_over(action, info)
        if self.latency_substeps:  # the previous command acts while this one is computed and sent
            mujoco.mj_step(self.model, self.data, nstep=self.latency_substeps)
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
        self.apply_action(action)
        self.physics_step(self.n_substeps - self.latency_substeps)
        success = self.compute_success()
        return self.get_obs(), float(success), success and self.terminate_on_success, {**info, INFO_SUCCESS: success}

    def _maybe_take_over(self, action: np.ndarray, info: dict) -> np.ndarray:
        """The simulated human's decision for this step; its action replaces the policy's while it drives."""
        self._steps += 1
        if self.intervene_after and not self._rescue and self._steps > self.intervene_after:
            self._rescue = True
            self._human.reset()  # its phase machine starts again from this state
        human = self._human.act({})[0]  # the scripted expert reads the sim, not the observation
        if not self._rescue and self._takeover == 0 and self.intervene_stray_m > 0:
            # where the policy's last 5 steps would take the TCP against the expert's path over them: summed
            # moves, so zero-mean jitter (exploration noise) cancels and a steady drift does not
            self._stray = [*self._stray[-4:], np.stack([action[:3], human[:3]]) * self.max_delta]
            if off_path(*np.sum(self._stray, axis=0)) > self.intervene_stray_m:
                self._takeover, self._stray = self.intervene_steps, []
        if not (self._rescue or self._takeover):  # the patient human drives to the end of the episode
            return action
        self._takeover = max(self._takeover - 1, 0)
        info[INFO_INTERVENTION], info[INFO_INTERVENTION_ACTION] = True, human.astype(np.float32)
        return human

    def sim_time(self) -> float:
        return float(self.data.time)  # the physics clock (mj_resetData zeroes it on reset)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
