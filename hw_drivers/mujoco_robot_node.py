"""A `sim/` task served as a ROS 2 robot on exactly the topics a real driver exposes.

    python -m hw_drivers.mujoco_robot_node --params configs/ros2/panda_sim.yaml

Physics runs in real time: a timer at `sim.publish_hz` steps the task until sim
time catches up with the wall clock, then publishes JointState, task success,
task state and (at `sim.camera_hz`) camera images. Commands pass the same safety
layer as on the env side (robot-side copy: limits, rate limit, workspace box, NaN
refusal); a malformed command is logged naming the topic and field and never
applied; a command computed from an observation older than `robot.max_command_age_s`
is dropped as stale. The watchdog holds position when commands stop for
`robot.watchdog_timeout_s`; a True on the e-stop topic latches a hold that only
the reset service releases (after the e-stop topic has gone back to False).
"""
from __future__ import annotations

import json
import time
from typing import Optional

import numpy as np
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from hw_drivers.command_gate import CommandGate
from hw_drivers.config import NodeParams
from hw_drivers.conversions import MessageFormatError, array_to_image, make_joint_state
from hw_drivers.kinematics import MujocoFK
from hw_drivers.node_common import parse_robot_params
from hw_drivers.ros_runtime import RELIABLE_QOS, RosNode
from hw_drivers.safety import SafetyLayer


class MujocoRobotNode:
    def __init__(self, p: NodeParams, node_name: str = "mujoco_robot") -> None:
        from robotlearn.envs import make_env

        self.p, r = p, p.robot
        self.env = make_env(p.sim.task, control_hz=p.sim.publish_hz, **p.sim.task_kwargs)
        for attr in ("set_joint_targets", "physics_step", "compute_success", "arm_joint_names", "model", "data"):
            if not hasattr(self.env, attr):
                raise TypeError(f"sim task {p.sim.task!r} lacks the joint-level interface ({attr})")
        if len(self.env.arm_joint_names) != len(r.joint_names):
            raise ValueError(f"robot.joint_names has {len(r.joint_names)} joints, sim task {p.sim.task} has "
                             f"{len(self.env.arm_joint_names)}")
        model = self.env.model
        self.phys_dt = getattr(self.env, "n_substeps", 1) * model.opt.timestep
        lim = r.limits
        fk = MujocoFK(model, self.env.arm_joint_names, p.sim.ee_site) if lim.workspace.low else None
        self.safety = SafetyLayer(r.joint_names, lim.joint_lower, lim.joint_upper, lim.max_velocity,
                                  dt=1.0 / r.control_hz, fk=fk, workspace_low=lim.workspace.low,
                                  workspace_high=lim.workspace.high)
        self.episode = 0
        self.cameras_enabled = True
        if len(p.sim.gripper_joints) != len(r.gripper.joint_names):
            raise ValueError("sim.gripper_joints must name the task joint of each robot.gripper.joint_names entry")
        jid = [model.joint(j).id for j in self.env.arm_joint_names]
        self._qadr, self._dadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
        self._finger_adr = [model.jnt_qposadr[model.joint(j).id] for j in p.sim.gripper_joints]

        self.ros = RosNode(node_name, p.dds, spin=False)
        n = self.ros.node
        self.gate = CommandGate(p, self.safety, self._q, n.get_logger(), min_dt=1.0 / p.sim.publish_hz)
        self.pub_js = n.create_publisher(JointState, r.state_topic, 10)
        self.pub_success = n.create_publisher(Bool, r.success_topic, 10) if r.success_topic else None
        self.pub_task = n.create_publisher(Float64MultiArray, r.task_state_topic, 10) if r.task_state_topic else None
        self.pub_status = n.create_publisher(String, r.status_topic, 10)
        self.pub_cams = [(c, n.create_publisher(CompressedImage if c.msg_type == "compressed" else Image, c.topic, 2))
                         for c in r.cameras]
        cmd_type = JointTrajectory if r.command.msg_type == "joint_trajectory" else Float64MultiArray
        n.create_subscription(cmd_type, r.command.topic, self.gate.on_command, RELIABLE_QOS)
        if r.gripper.command_topic:
            n.create_subscription(Float64MultiArray, r.gripper.command_topic, self._on_gripper, RELIABLE_QOS)
        n.create_subscription(Bool, r.estop_topic, self.gate.on_estop, RELIABLE_QOS)
        n.create_service(Trigger, r.reset_service, self._on_reset)
        n.create_service(SetBool, f"{node_name}/camera_enable", self._on_camera_enable)  # simulates a camera dropout
        self._renderers: dict[str, object] = {}

        self._reset_sim()
        self.t0 = time.monotonic()
        self.steps = 0
        self.last_cam = -1e9
        self.lag_s = 0.0
        n.create_timer(1.0 / p.sim.publish_hz, self._tick)
        n.create_timer(0.2, self._publish_status)

    # --- state --------------------------------------------------------------
    def _q(self) -> np.ndarray:
        return self.env.data.qpos[self._qadr].copy()

    def _reset_sim(self) -> None:
        self.env.reset(seed=self.p.sim.seed + self.episode)
        self.episode += 1
        self.gate.reset(self._q())
        self.gripper = -1.0  # normalised: open
        self.env.set_joint_targets(self.gate.target, self.gripper)

    # --- callbacks ----------------------------------------------------------
    def _on_gripper(self, msg: Float64MultiArray) -> None:
        g = self.p.robot.gripper
        vals = list(msg.data)
        if len(vals) != 1 or not np.isfinite(vals[0]):
            return self.gate._reject(MessageFormatError(f"{g.command_topic}: expected one finite value, got {vals}"))
        if self.gate.estop.engaged:
            return
        lo, hi = min(g.low, g.high), max(g.low, g.high)
        x = float(np.clip(vals[0], lo, hi))
        self.gripper = float(2.0 * (x - g.low) / (g.high - g.low) - 1.0)  # physical -> sim [-1, 1]

    def _on_reset(self, req, resp):
        ok, why = self.gate.try_release()
        if not ok:
            resp.success, resp.message = False, why
            return resp
        self._reset_sim()
        resp.success, resp.message = True, json.dumps({"episode": self.episode})
        return resp

    def _on_camera_enable(self, req, resp):
        self.cameras_enabled = bool(req.data)
        resp.success, resp.message = True, f"cameras {'enabled' if req.data else 'disabled'}"
        return resp

    # --- real-time loop -----------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        due = int((now - self.t0) / self.phys_dt) - self.steps
        if due > 20:  # fell behind (e.g. a slow render): drop sim time rather than fast-forward
            self.t0 += (due - 1) * self.phys_dt
            self.lag_s += (due - 1) * self.phys_dt
            due = 1
        for _ in range(max(due, 0)):
            self.env.set_joint_targets(self.gate.update(self.phys_dt), self.gripper)
            self.env.physics_step()
            self.steps += 1
        self._publish(now)

    def _publish(self, now: float) -> None:
        r, env = self.p.robot, self.env
        stamp = self.ros.node.get_clock().now().to_msg()
        q = self._q()
        dq = env.data.qvel[self._dadr]
        names, pos, vel = list(r.joint_names), list(q), list(dq)
        for name, adr in zip(r.gripper.joint_names, self._finger_adr):
            names.append(name)
            pos.append(float(env.data.qpos[adr]))
            vel.append(0.0)
        self.pub_js.publish(make_joint_state(names, pos, vel, stamp))
        if self.pub_success is not None:
            self.pub_success.publish(Bool(data=bool(env.compute_success())))
        if self.pub_task is not None:
            feats = np.asarray(env.get_obs()["state"], float)[-r.task_state_dim:]
            self.pub_task.publish(Float64MultiArray(data=[float(x) for x in feats]))
        if self.pub_cams and self.cameras_enabled and now - self.last_cam >= 1.0 / self.p.sim.camera_hz:
            self.last_cam = now
            for cam, pub in self.pub_cams:
                pub.publish(array_to_image(self._render(cam), cam, stamp))

    def _render(self, cam) -> np.ndarray:
        from sim.rendering import offscreen_renderer  # closed at exit before EGL is: no teardown tracebacks

        rend = self._renderers.get(cam.name)
        if rend is None:
            rend = self._renderers[cam.name] = offscreen_renderer(self.env.model, cam.height, cam.width)
        camera = cam.mujoco_camera or -1
        if cam.mujoco_camera and hasattr(self.env, "camera_id"):  # the task's own names: "wrist" is "panda/wrist"
            camera = self.env.camera_id(cam.mujoco_camera)
        rend.update_scene(self.env.data, camera=camera)
        return rend.render().copy()

    def _publish_status(self) -> None:
        status = {"episode": self.episode, "sim_time": self.steps * self.phys_dt, "dropped_sim_time": self.lag_s,
                  **self.gate.status()}
        self.pub_status.publish(String(data=json.dumps(status)))

    def spin(self) -> None:
        self.ros.spin_forever()


def main(argv: Optional[list[str]] = None) -> int:
    args, p = parse_robot_params(__doc__.split("\n\n")[0], argv)
    node = MujocoRobotNode(p)
    node.ros.node.get_logger().info(f"serving {p.sim.task} as {p.robot.name} on {p.robot.state_topic}")
    node.spin()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
