"""`Ros2RobotEnv`: a ROS 2 robot behind the common `RobotEnv` interface.

    env = make_env("ros2/panda_sim")      # configs/env/ros2/panda_sim.yaml -> configs/ros2/panda_sim.yaml

Each step: (1) a human intervention, if active, replaces the policy action; (2) the
normalised action becomes joint targets (absolute over the joint limits, or a delta
of up to max_velocity/control_hz from the last target), goes through the safety
layer and is published; (3) the env sleeps to the next control tick of a wall-clock
schedule (a late step counts as an overrun, reported in `info` and `timing`);
(4) the observation is assembled from the newest message on every topic, each
checked against its staleness limit; `info["timestamp"]` is the header stamp of its
joint-state message (the robot's clock, s), which the next command carries. Reset
goes through the robot's Trigger service. Success comes from the task success topic
or a human label (std_msgs/Bool: True success, False failure); both end the episode.

state (float32) = q (n) | dq (n, if env.include_velocity) | TCP xyz by forward kinematics (3, if
env.include_tcp) | gripper width (1, if gripper joints) | task state (robot.task_state_dim), named
in `EnvInfo.state_names` exactly as the sim tasks name theirs (`obs: proprio` is the same vector);
images/<camera> uint8 (H, W, 3). With `env.action_mode: ee_delta` the action is the sim tasks'
`ee_delta_pos+gripper`: a TCP step from the measured pose (from the last target with
`env.ee_integrate`: `ee_delta_pos_integrated+gripper`), by the same IK as in sim, then the
joint-space safety layer.
"""
from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
from gymnasium import spaces
from sensor_msgs.msg import CompressedImage, Image, JointState, Joy
from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

import hw_drivers.bases  # noqa: F401 - registers the joint-space bases of ROS 2 robots (joint_reach)
from hw_drivers.config import RECORDED, InterventionConfig, NodeParams, load_params, param_content
from hw_drivers.conversions import (
    STAMP_LABEL,
    MessageFormatError,
    image_to_array,
    joint_state_to_arrays,
    make_command,
)
from hw_drivers.kinematics import MujocoFK
from hw_drivers.ros_runtime import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, RosNode
from hw_drivers.safety import EStopLatch, SafetyLayer, check_finite
from hw_drivers.sensors import StaleObservationError, TopicCache
from robotlearn.envs import (
    IMAGE_PREFIX,
    STATE_KEY,
    ActionSpec,
    EnvDescription,
    EnvError,
    EnvInfo,
    RobotEnv,
    make_observation_space,
    proprio_state_names,
)
from robotlearn.envs.interface import (
    INFO_HUMAN_LABEL,
    INFO_INTERVENTION,
    INFO_INTERVENTION_ACTION,
    INFO_SUCCESS,
    INFO_TIMESTAMP,
)
from robotlearn.envs.kinematics import ee_action_kind, tcp_target


def resolve_params(path: str) -> Path:
    """`ros2/panda_sim.yaml` -> that file in the first config directory holding it (robotlearn.envs.find_config);
    absolute or existing paths as given."""
    from robotlearn.envs import config_root, find_config

    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return find_config(p) or config_root() / p  # not found: the error names the shipped path


def robot_source(params: str | dict, overrides: Optional[dict] = None,
                 env_name: Optional[str] = None) -> tuple[NodeParams, str, dict[str, Any]]:
    """(params, where they came from, the env config to record). The record holds the params' content,
    not the path, so a dataset or checkpoint rebuilds the env on a machine without that file."""
    if params is None:
        raise EnvError("a ROS 2 robot env needs its params: env=ros2/custom env.params=<robot params YAML> "
                       "(or env=ros2/<name> with configs/env/ros2/<name>.yaml)")
    if isinstance(params, dict):
        where, content = RECORDED, params
    else:
        where, content = param_content(resolve_params(params))
    p = load_params(content, overrides)
    if isinstance(params, dict) and not env_name:
        raise EnvError("Ros2RobotEnv: params given as content need env_name=ros2/<robot>")
    env_name = env_name or f"ros2/{Path(where).stem}"
    return p, where, {"params": content, "overrides": dict(overrides or {}), "env_name": env_name}


def describe_params(p: NodeParams, record: dict[str, Any], horizon: Optional[int] = None) -> EnvDescription:
    """The env's facts and spaces from the params alone, without ROS (the learner needs these)."""
    r, e, lim = p.robot, p.env, p.robot.limits
    n, dt = len(r.joint_names), 1.0 / r.control_hz
    if e.action_mode == "joint_pos":
        kind, low, high, units = "joint_pos", list(lim.joint_lower), list(lim.joint_upper), ["rad"] * n
        names = list(r.joint_names)
    elif e.action_mode == "ee_delta":  # exactly the sim tasks' spec (sim/tasks/base.py), so checkpoints move
        d = e.ee_max_delta
        kind, low, high, units, names = ee_action_kind(e.ee_integrate), [-d] * 3, [d] * 3, ["m"] * 3, ["dx", "dy", "dz"]
    else:
        step = [v * dt for v in lim.max_velocity]
        kind, low, high, units = "joint_delta", [-s for s in step], step, ["rad/step"] * n
        names = list(r.joint_names)
    if r.gripper.command_topic:
        kind, names = kind + "+gripper", names + ["gripper"]
        low, high, units = low + [r.gripper.low], high + [r.gripper.high], units + ["gripper command"]
    spec = ActionSpec(kind=kind, names=tuple(names), low=tuple(low), high=tuple(high), units=tuple(units))
    state_names = proprio_state_names(n, e.include_velocity, e.include_tcp, bool(r.gripper.joint_names)) + \
        tuple(f"task{i}" for i in range(r.task_state_dim))
    obs_space = make_observation_space(len(state_names), {c.name: (c.height, c.width) for c in r.cameras})
    info = EnvInfo(name=record["env_name"], control_hz=r.control_hz, horizon=int(horizon or e.horizon), action_spec=spec,
                   config=record, state_names=state_names)
    return EnvDescription(info, obs_space, spaces.Box(-1.0, 1.0, shape=(len(names),), dtype=np.float32))


class Ros2RobotEnv(RobotEnv):
    paces_itself = True  # step() sleeps to the robot's control tick

    @classmethod
    def describe(cls, params: str | dict = "ros2/panda_sim.yaml", overrides: Optional[dict[str, Any]] = None,
                 horizon: Optional[int] = None, env_name: Optional[str] = None) -> EnvDescription:
        """What `Ros2RobotEnv(params, overrides, horizon)` would declare, read from its params alone."""
        p, _, record = robot_source(params, overrides, env_name)
        return describe_params(p, record, horizon)

    @staticmethod
    def robot_params(params: str | dict = "ros2/panda_sim.yaml", overrides: Optional[dict[str, Any]] = None,
                     horizon: Optional[int] = None, env_name: Optional[str] = None) -> NodeParams:
        """The robot description (topics, limits, DDS settings) this env's config names."""
        return robot_source(params, overrides, env_name)[0]

    def __init__(self, params: str | dict = "ros2/panda_sim.yaml", overrides: Optional[dict[str, Any]] = None,
                 horizon: Optional[int] = None, env_name: Optional[str] = None) -> None:
        """`params`: a robot params YAML (`ros2/panda_sim.yaml` under configs/, or any path), or its content
        as recorded in a dataset/checkpoint; `env_name`: the env's name (default ros2/<params file stem>)."""
        super().__init__()
        self.p, path, record = robot_source(params, overrides, env_name)
        r = self.p.robot
        self.names, lim = list(r.joint_names), r.limits
        self.dt = 1.0 / r.control_hz
        e, fk = self.p.env, None
        if lim.workspace.low and not lim.workspace.mjcf:
            raise EnvError(f"{path}: robot.limits.workspace needs an mjcf + site for forward kinematics")
        if lim.workspace.mjcf and (lim.workspace.low or e.include_tcp or e.action_mode == "ee_delta"):
            fk = MujocoFK.from_mjcf(lim.workspace.mjcf, lim.workspace.mjcf_joints or self.names, lim.workspace.site)
        self.fk = fk
        self._ee_ref: np.ndarray | None = None  # ee_integrate: the last step's TCP target
        self._ee_box = (np.asarray(e.ee_target_low or lim.workspace.low or [-np.inf] * 3, float),
                        np.asarray(e.ee_target_high or lim.workspace.high or [np.inf] * 3, float))
        self.safety = SafetyLayer(self.names, lim.joint_lower, lim.joint_upper, lim.max_velocity, self.dt, fk,
                                  lim.workspace.low, lim.workspace.high)
        self.has_gripper = bool(r.gripper.command_topic)
        self.accepts_interventions = r.intervention.msg_type != "none"
        self.accepts_labels = bool(r.label_topic)
        d = describe_params(self.p, record, horizon)
        self.env_info, self.observation_space, self.action_space = d.env_info, d.observation_space, d.action_space
        if r.intervention.msg_type == "joy" and len(r.intervention.axes) != self.action_space.shape[0]:
            raise EnvError(f"{path}: robot.intervention.axes needs one entry per action dimension "
                           f"({self.action_space.shape[0]})")
        self.estop = EStopLatch()
        self.timing = {"steps": 0, "overruns": 0, "max_overrun_s": 0.0, "periods": collections.deque(maxlen=10_000)}
        self._setup_ros()

    # --- ROS wiring -----------------------------------------------------------
    def _setup_ros(self) -> None:
        r = self.p.robot
        self.ros = RosNode(f"robotlearn_env_{r.name}", self.p.dds)
        node, self.cache = self.ros.node, TopicCache()
        grip = r.gripper.joint_names

        def state(msg):
            q, dq = joint_state_to_arrays(msg, self.names, r.state_topic)
            g = joint_state_to_arrays(msg, grip, r.state_topic)[0] if grip else np.zeros(0)
            return q, dq, g, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

        self.cache.subscribe(node, JointState, r.state_topic, SENSOR_QOS, state)
        for cam in r.cameras:
            self.cache.subscribe(node, CompressedImage if cam.msg_type == "compressed" else Image, cam.topic,
                                 SENSOR_QOS, lambda m, c=cam: image_to_array(m, c))
        if r.task_state_topic:
            self.cache.subscribe(node, Float64MultiArray, r.task_state_topic, SENSOR_QOS, self._task_state)
        for topic in (r.success_topic, r.label_topic):
            if topic:
                self.cache.subscribe(node, Bool, topic, RELIABLE_QOS, lambda m: bool(m.data))
        iv = r.intervention
        if iv.msg_type != "none":
            msg_type = Joy if iv.msg_type == "joy" else Float64MultiArray
            self.cache.subscribe(node, msg_type, iv.topic, RELIABLE_QOS, lambda m, c=iv: self._intervention(m, c))
        self.cache.subscribe(node, String, r.status_topic, RELIABLE_QOS, lambda m: m.data)
        node.create_subscription(Bool, r.estop_topic, self._on_estop, RELIABLE_QOS)
        cmd_type = JointTrajectory if r.command.msg_type == "joint_trajectory" else Float64MultiArray
        self.pub_cmd = node.create_publisher(cmd_type, r.command.topic, RELIABLE_QOS)
        self.pub_grip = node.create_publisher(Float64MultiArray, r.gripper.command_topic, RELIABLE_QOS) \
            if self.has_gripper else None
        self.pub_estop = node.create_publisher(Bool, r.estop_topic, LATCHED_QOS)
        self.reset_client = node.create_client(Trigger, r.reset_service)

    def _task_state(self, msg: Float64MultiArray) -> np.ndarray:
        r = self.p.robot
        if len(msg.data) != r.task_state_dim:
            raise MessageFormatError(f"Float64MultiArray.data has {len(msg.data)} values, expected "
                                     f"robot.task_state_dim={r.task_state_dim}")
        return check_finite(msg.data, "Float64MultiArray.data")

    def wait_for_intervention(self, timeout_s: float) -> bool:
        iv = self.p.robot.intervention
        if iv.msg_type == "none":
            return False
        end = time.monotonic() + timeout_s
        while self.cache.peek(iv.topic, iv.timeout_s) is None:
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def _intervention(self, msg, iv: InterventionConfig) -> np.ndarray:
        A = self.action_space.shape[0]
        if iv.msg_type == "joy":
            held = iv.deadman_button < len(msg.buttons) and msg.buttons[iv.deadman_button]
            if not held:
                return None
            ax = np.array([msg.axes[i] * iv.scale if 0 <= i < len(msg.axes) else 0.0 for i in iv.axes])
        else:
            if len(msg.data) != A:
                raise MessageFormatError(f"Float64MultiArray.data has {len(msg.data)} values for {A} action dims")
            ax = np.asarray(msg.data, float)
        return np.clip(check_finite(ax, "intervention action"), -1.0, 1.0).astype(np.float32)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.estop.trigger(f"{self.p.robot.estop_topic} = True")

    def trigger_estop(self, reason: str = "requested by software") -> None:
        """Latch the e-stop here and on every node listening to the e-stop topic."""
        self.estop.trigger(reason)
        self.pub_estop.publish(Bool(data=True))

    # --- observation ----------------------------------------------------------
    def _sensor_topics(self) -> list[str]:
        r = self.p.robot
        return [r.state_topic] + [c.topic for c in r.cameras] + ([r.task_state_topic] if r.task_state_topic else [])

    def _observe(self) -> dict[str, np.ndarray]:
        r, st = self.p.robot, self.p.robot.staleness
        q, dq, g, stamp = self.cache.get(r.state_topic, st.state_s)
        e = self.p.env
        parts = [q] + ([dq] if e.include_velocity else []) + ([self.fk(q)] if e.include_tcp else []) + \
            ([[g.sum()]] if r.gripper.joint_names else [])
        if r.task_state_topic:
            parts.append(self.cache.get(r.task_state_topic, st.task_state_s))
        obs = {STATE_KEY: np.concatenate(parts).astype(np.float32)}
        for cam in r.cameras:
            obs[IMAGE_PREFIX + cam.name] = self.cache.get(cam.topic, st.camera_s)
        self._q, self._obs_stamp = q, stamp
        return obs

    # --- RobotEnv hooks -------------------------------------------------------
    def _reset(self, seed, options):
        r, e = self.p.robot, self.p.env
        if not self.reset_client.wait_for_service(timeout_sec=r.staleness.wait_first_s):
            raise EnvError(f"{r.reset_service}: reset service not available after {r.staleness.wait_first_s}s")
        counts = {t: self.cache.count(t) for t in self._sensor_topics() + [r.success_topic] if t}
        fut = self.reset_client.call_async(Trigger.Request())
        end = time.monotonic() + e.reset_timeout_s
        while not fut.done():
            if time.monotonic() > end:
                raise EnvError(f"{r.reset_service}: no response within {e.reset_timeout_s}s")
            time.sleep(0.002)
        resp = fut.result()
        if not resp.success:
            raise EnvError(f"{r.reset_service}: reset refused: {resp.message}")
        self.estop.release()
        if r.label_topic:
            self.cache.clear(r.label_topic)
        # observations from after the reset only (2 state messages: one may have been in flight)
        self.cache.wait_new([t for t in counts if t != r.success_topic], counts, 1, e.reset_timeout_s)
        self.cache.wait_new([r.state_topic] + ([r.success_topic] if r.success_topic else []), counts, 2,
                            e.reset_timeout_s)
        obs = self._observe()
        self._target = self._q.copy()
        self._ee_ref = None  # ee_integrate: no target since the reset
        self._gripper = -1.0
        self._tick = time.monotonic()
        return obs, {"reset_response": resp.message, INFO_TIMESTAMP: self._stamp_s}

    def _step(self, action: np.ndarray):
        r, info = self.p.robot, {}
        if self.estop.engaged:
            return self._observe_or_last(), 0.0, True, {"estop": self.estop.reason, INFO_TIMESTAMP: self._stamp_s}
        self.cache.get(r.state_topic, r.staleness.state_s)  # never command from a dead state stream
        human = self.cache.peek(r.intervention.topic, r.intervention.timeout_s) if r.intervention.msg_type != "none" else None
        if human is not None:
            action = human
            info[INFO_INTERVENTION], info[INFO_INTERVENTION_ACTION] = True, human.copy()
        q_cmd, rep = self._to_joint_targets(action)
        self._publish(q_cmd)
        info["safety_modified"] = rep.modified
        self._wait_tick(info)
        obs = self._observe()
        success, terminated = False, False
        if r.success_topic and self.cache.peek(r.success_topic, r.staleness.task_state_s):  # a fresh True only
            success = True
        label = self.cache.peek(r.label_topic) if r.label_topic else None
        if label is not None:
            success, terminated = bool(label), True
            info[INFO_HUMAN_LABEL] = bool(label)
        terminated = terminated or (success and self.p.env.terminate_on_success)
        info[INFO_SUCCESS], info[INFO_TIMESTAMP] = success, self._stamp_s
        return obs, float(success), terminated, info

    @property
    def _stamp_s(self) -> float:
        """INFO_TIMESTAMP: the header stamp (s, the robot's clock) of the state message behind the last observation."""
        return self._obs_stamp * 1e-9

    def _observe_or_last(self) -> dict[str, np.ndarray]:
        try:
            return self._observe()
        except EnvError:
            return {k: np.zeros(s.shape, s.dtype) for k, s in self.observation_space.spaces.items()}

    def _to_joint_targets(self, action: np.ndarray):
        n, spec, e = len(self.names), self.env_info.action_spec, self.p.env
        phys = spec.to_physical(action)
        if e.action_mode == "ee_delta":  # as the sim tasks: a TCP step (from the measured pose or the last
            # target, env.ee_integrate), orientation held
            target = tcp_target(e.ee_integrate, self.fk(self._q), self._ee_ref, phys[:3], *self._ee_box,
                                e.ee_max_delta)
            self._ee_ref = target
            q_des = self.fk.ik(self._q, target, e.ee_quat, e.ee_home_q or None)
        else:
            q_des = phys[:n] if e.action_mode == "joint_pos" else self._target + phys[:n]
        q_safe, rep = self.safety.filter(q_des, self._target, what=self.p.robot.command.topic)
        if self.has_gripper:
            self._gripper = float(phys[-1])  # the gripper is the last action dimension
        return q_safe, rep

    def _publish(self, q_safe: np.ndarray) -> None:
        r = self.p.robot
        vals = self.safety.velocity_command(q_safe, self._q) if r.command.mode == "velocity" else q_safe
        msg = make_command(vals, r.command, self.names, self.dt)
        if isinstance(msg, Float64MultiArray):
            msg.layout.dim = [MultiArrayDimension(label=f"{STAMP_LABEL}{self._obs_stamp}", size=len(vals),
                                                  stride=len(vals))]
        if self.estop.engaged:
            return
        self.pub_cmd.publish(msg)
        if self.pub_grip is not None:
            self.pub_grip.publish(Float64MultiArray(data=[self._gripper]))
        self._target = q_safe

    def _wait_tick(self, info: dict) -> None:
        self._tick += self.dt
        now = time.monotonic()
        if now > self._tick:  # the policy (or anything else) took longer than one period
            late = now - self._tick
            self.timing["overruns"] += 1
            self.timing["max_overrun_s"] = max(self.timing["max_overrun_s"], late)
            info["overrun_s"] = late
            if self.timing["overruns"] in (1, 10, 100) or self.timing["overruns"] % 1000 == 0:
                self.ros.node.get_logger().warning(f"control overrun: step {late * 1e3:.1f} ms late at "
                                                   f"{self.control_hz} Hz ({self.timing['overruns']} so far)")
            self._tick = now
        else:
            topic, period = self.p.robot.state_topic, self.cache.period(self.p.robot.state_topic)
            ratio = self.dt / period if period else 0.0
            # a whole number of state periods per step (else ending on a state would shift steps by up to half
            # a state period: jitter)
            lead = period / 2 if self.p.env.step_on_state and ratio >= 0.9 and abs(ratio - round(ratio)) < 0.1 else 0.0
            if self._tick - lead > now:
                time.sleep(self._tick - lead - now)
            if lead and self.cache.wait_newer(topic, self.cache.count(topic), 2 * lead):
                # phase-locked: the next tick counts from this state's arrival (its receipt time, so the wake-up
                # delay after it does not add up over steps)
                self._tick = self.cache.received_at(topic)
            elif self._tick > time.monotonic():
                time.sleep(self._tick - time.monotonic())
        self.timing["steps"] += 1
        self.timing["periods"].append(time.monotonic())

    def close(self) -> None:
        self.ros.close()


__all__ = ["Ros2RobotEnv", "StaleObservationError", "describe_params", "resolve_params"]
