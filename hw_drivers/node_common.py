"""Shared command-line handling for every node (robot, bridge, labels, actor, learner)."""
from __future__ import annotations

import argparse
import signal
import threading

from hw_drivers.config import load_params
from hw_drivers.finetune_params import FinetuneParams, load_finetune, parse_sets
from hw_drivers.ros_runtime import strip_ros_args


def parse(description: str, argv: list[str] | None) -> tuple[argparse.Namespace, FinetuneParams]:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", required=True, help="finetune YAML (configs/ros2/finetune_*.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key, e.g. learner.out_dir=runs/x or robot_overrides.dds.domain_id=7")
    args = ap.parse_args(strip_ros_args(argv))
    return args, load_finetune(args.params, parse_sets(args.set))


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
