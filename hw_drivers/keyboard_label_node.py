"""Keyboard node for the operator: episode labels and a software e-stop from a terminal.

    python -m hw_drivers.keyboard_label_node --params configs/ros2/panda_real.yaml

Type a letter + Enter:  s = success, f = failure (std_msgs/Bool on robot.label_topic; ends the
episode in Ros2RobotEnv), e = e-stop (True on robot.estop_topic, latched by every node),
r = release the e-stop button (False; the robot resumes only after a reset), q = quit.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

from std_msgs.msg import Bool

from hw_drivers.node_common import parse_robot_params
from hw_drivers.ros_runtime import LATCHED_QOS, RELIABLE_QOS, RosNode

KEYS = {"s": ("label", True), "f": ("label", False), "e": ("estop", True), "r": ("estop", False)}


def main(argv: Optional[list[str]] = None) -> int:
    args, p = parse_robot_params(__doc__.split("\n\n")[0], argv)
    if not p.robot.label_topic:
        print(f"{args.params}: robot.label_topic is empty: labels go nowhere", file=sys.stderr)
        return 2
    ros = RosNode("robotlearn_keyboard_labels", p.dds)
    pubs = {"label": ros.node.create_publisher(Bool, p.robot.label_topic, RELIABLE_QOS),
            "estop": ros.node.create_publisher(Bool, p.robot.estop_topic, LATCHED_QOS)}
    end = time.monotonic() + 5.0  # give discovery a moment so the first key press is not lost
    while pubs["label"].get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    if pubs["label"].get_subscription_count() == 0:
        print(f"nobody subscribes {p.robot.label_topic} yet (is the actor running?)", flush=True)
    print("s=success f=failure e=e-stop r=release q=quit", flush=True)
    try:
        for line in sys.stdin:
            key = line.strip().lower()[:1]
            if key == "q":
                break
            if key in KEYS:
                stream, value = KEYS[key]
                pubs[stream].publish(Bool(data=value))
                print(f"{stream} = {value}", flush=True)
            elif key:
                print(f"unknown key {key!r}: s f e r q", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        ros.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
