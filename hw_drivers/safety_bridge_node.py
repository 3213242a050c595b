"""Safety bridge: the robot-side guard between `Ros2RobotEnv` and a real robot's controller.

    python -m hw_drivers.safety_bridge_node --params configs/ros2/panda_real.yaml

Runs on the robot's computer. Subscribes the env's commands (`robot.command.topic`),
applies the same checks as the MuJoCo robot node (validation, joint/velocity/workspace
limits, NaN refusal, e-stop latch, stale-command drop, command watchdog) and re-sends the safe target to
the controller (`bridge.output_topic`) at `bridge.rate_hz`. When commands stop or the
e-stop latches, it holds the measured position. Its reset service releases the latch
(once the e-stop topic reads False) and forwards to the robot's homing service.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Optional

import numpy as np
from rclpy.callback_groups import ReentrantCallbackGroup
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from hw_drivers.command_gate import CommandGate
from hw_drivers.config import NodeParams, ParamError
from hw_drivers.conversions import (
    MessageFormatError,
    joint_state_to_arrays,
    make_command,
)
from hw_drivers.kinematics import MujocoFK
from hw_drivers.node_common import parse_robot_params
from hw_drivers.ros_runtime import RELIABLE_QOS, SENSOR_QOS, RosNode
from hw_drivers.safety import SafetyLayer


class SafetyBridge:
    def __init__(self, p: NodeParams) -> None:
        self.p, r, b = p, p.robot, p.bridge
        lim, ws = r.limits, r.limits.workspace
        fk = MujocoFK.from_mjcf(ws.mjcf, ws.mjcf_joints or r.joint_names, ws.site) if ws.low else None
        self.safety = SafetyLayer(r.joint_names, lim.joint_lower, lim.joint_upper, lim.max_velocity,
                                  dt=1.0 / r.control_hz, fk=fk, workspace_low=ws.low, workspace_high=ws.high)
        self.ros = RosNode("robotlearn_safety_bridge", p.dds, spin=False, threads=2)
        n, group = self.ros.node, ReentrantCallbackGroup()
        self.log = n.get_logger()
        self.q: Optional[np.ndarray] = None
        self.q_time = 0.0
        self.resetting = threading.Event()  # homing in progress: the bridge sends nothing
        n.create_subscription(JointState, r.state_topic, self._on_state, SENSOR_QOS)
        self.gate: Optional[CommandGate] = None  # armed at the first joint state
        cmd_type = JointTrajectory if r.command.msg_type == "joint_trajectory" else Float64MultiArray
        self.pub_out = n.create_publisher(cmd_type, b.output_topic, RELIABLE_QOS)
        self.pub_status = n.create_publisher(String, b.status_topic, 10)
        n.create_subscription(cmd_type, r.command.topic, self._on_command, RELIABLE_QOS)
        n.create_subscription(Bool, r.estop_topic, self._on_estop, RELIABLE_QOS)
        n.create_service(Trigger, r.reset_service, self._on_reset, callback_group=group)
        self.home = n.create_client(Trigger, b.home_service, callback_group=group) if b.home_service else None
        self.out_cfg = dataclasses.replace(r.command, topic=b.output_topic)
        n.create_timer(1.0 / b.rate_hz, self._tick)
        n.create_timer(0.2, self._status)

    def _measured(self) -> np.ndarray:
        return self.q.copy()

    def _on_state(self, msg: JointState) -> None:
        try:
            self.q, _ = joint_state_to_arrays(msg, self.p.robot.joint_names, self.p.robot.state_topic)
        except MessageFormatError as e:
            self.log.error(f"{e}; not used")
            return
        self.q_time = time.monotonic()
        if self.gate is None:
            self.gate = CommandGate(self.p, self.safety, self._measured, self.log, min_dt=1.0 / self.p.bridge.rate_hz)

    def _on_command(self, msg) -> None:
        if self.gate is not None:
            self.gate.on_command(msg)

    def _on_estop(self, msg: Bool) -> None:
        if self.gate is not None:
            self.gate.on_estop(msg)

    def _tick(self) -> None:
        if self.gate is None or self.resetting.is_set():
            return  # no joint state yet / homing: nothing safe to send
        dt = 1.0 / self.p.bridge.rate_hz
        target = self.gate.update(dt)
        if time.monotonic() - self.q_time > self.p.robot.staleness.state_s and not self.gate.hold:
            self.gate.hold, self.gate.target = True, self._measured()  # driver silent: freeze on the last state
        vals = self.safety.velocity_command(target, self.q, dt) if self.p.robot.command.mode == "velocity" else target
        self.pub_out.publish(make_command(vals, self.out_cfg, self.p.robot.joint_names, dt))

    def _on_reset(self, req, resp):
        if self.gate is None:
            resp.success, resp.message = False, f"no joint state on {self.p.robot.state_topic} yet"
            return resp
        ok, why = self.gate.try_release()
        if ok and self.home is not None:
            self.resetting.set()
            try:
                if not self.home.wait_for_service(timeout_sec=5.0):
                    ok, why = False, f"homing service {self.p.bridge.home_service} not available"
                else:
                    res = self.home.call(Trigger.Request())  # reentrant group + 2 threads: no deadlock
                    ok, why = res.success, res.message
                    t_done = time.monotonic()
                    while self.q_time <= t_done and time.monotonic() - t_done < 2.0:  # a post-homing state
                        time.sleep(0.002)
            finally:
                if ok:
                    self.gate.reset(self._measured())
                self.resetting.clear()
        elif ok:
            self.gate.reset(self._measured())
        resp.success, resp.message = ok, why
        return resp

    def _status(self) -> None:
        if self.gate is not None:
            self.pub_status.publish(String(data=json.dumps(self.gate.status())))

    def spin(self) -> None:
        self.ros.spin_forever()


def main(argv: Optional[list[str]] = None) -> int:
    args, p = parse_robot_params(__doc__.split("\n\n")[0], argv)
    try:
        bridge = SafetyBridge(p)
    except ParamError as e:  # a workspace box without kinematics, a missing model: one line, no traceback
        raise SystemExit(f"error: {args.params}: {e}") from None
    bridge.log.info(f"safety bridge {p.robot.command.topic} -> {p.bridge.output_topic} at {p.bridge.rate_hz:g} Hz")
    bridge.spin()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
