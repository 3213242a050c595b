"""Shared command-line handling for every node (robot, bridge, labels, actor, learner)."""
from __future__ import annotations

import argparse
import signal
import threading

from hw_drivers.config import DdsConfig, load_params
from hw_drivers.ros2_transport import Ros2TransportConfig
from hw_drivers.ros_runtime import strip_ros_args
from robotlearn.config import ConfigError
from robotlearn.runtime.spec import Ros2RuntimeConfig, RunSpec, load_spec


def parse(description: str, argv: list[str] | None) -> tuple[argparse.Namespace, RunSpec]:
    """`--params <run spec YAML> [--set key=value ...]` -> the run spec (runtime=ros2)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", required=True, help="run spec YAML (configs/ros2/finetune_*.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key, e.g. learner.out_dir=runs/x or env.params=/path/robot.yaml")
    ap.add_argument("--index", type=int, default=0, help="actor node: its index in the run (actor id and seeds)")
    args = ap.parse_args(strip_ros_args(argv))
    try:
        spec = load_spec(args.params, args.set)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    if not isinstance(spec.runtime, Ros2RuntimeConfig):
        raise SystemExit(f"error: {args.params}: the ROS 2 nodes run specs with runtime.name: ros2, "
                         f"got {spec.runtime.name!r}")
    return args, spec


def transport_config(spec: RunSpec) -> Ros2TransportConfig:
    """The ROS 2 transport of a runtime=ros2 spec, on the DDS domain of the robot its env names."""
    from hw_drivers.ros2_env import Ros2RobotEnv

    rt, env = spec.runtime, dict(spec.env)
    dds = Ros2RobotEnv.robot_params(**{k: v for k, v in env.items() if k != "_target_"}).dds \
        if env.get("_target_") == f"{Ros2RobotEnv.__module__}.{Ros2RobotEnv.__name__}" else DdsConfig()
    return Ros2TransportConfig(namespace=rt.namespace, transitions_depth=rt.transitions_depth,
                               send_queue=rt.send_queue, dds=dds, auth_key_file=rt.auth_key_file)


def parse_robot_params(description: str, argv: list[str] | None):
    """`--params <robot YAML> [--domain-id N]` -> (args, NodeParams) for the robot-side nodes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", required=True, help="robot description YAML (configs/ros2/*.yaml)")
    ap.add_argument("--domain-id", type=int, default=None, help="override dds.domain_id")
    args = ap.parse_args(strip_ros_args(argv))
    return args, load_params(args.params, {"dds.domain_id": args.domain_id} if args.domain_id is not None else None)


def stop_on_signals() -> threading.Event:
    """An Event set by SIGINT/SIGTERM, so loops finish their episode bookkeeping and close cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
