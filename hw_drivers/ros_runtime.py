"""A ROS 2 node with its own context and a background executor thread, plus the QoS we use.

Each component (env, actor transport, learner transport) owns one, so several can
live in one process without sharing global rclpy state, and callbacks run while
the owner's loop does real work (the actor never waits on DDS).
"""
from __future__ import annotations

import atexit
import threading
from typing import Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from hw_drivers.config import DdsConfig, apply_dds

# Sensors: latest value matters, drop rather than queue.
SENSOR_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
# Commands / e-stop / labels: every message counts.
RELIABLE_QOS = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
# Latched state (e-stop, weights): late joiners get the last message.
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def transitions_qos(depth: int) -> QoSProfile:
    """Transition batches: reliable, keep-last deep enough to cover a learner hiccup."""
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


class RosNode:
    """`node` spun by a daemon executor thread in a private rclpy context."""

    def __init__(self, name: str, dds: Optional[DdsConfig] = None, spin: bool = True, threads: int = 1) -> None:
        if dds is not None:
            apply_dds(dds)
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context) if threads == 1 else \
            MultiThreadedExecutor(num_threads=threads, context=self.context)
        self.executor.add_node(self.node)
        self._thread: Optional[threading.Thread] = None
        if spin:
            self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
            self._thread.start()
        atexit.register(self.close)  # a spinning executor left at interpreter exit aborts the process

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass
        except Exception:  # context shut down under us during close()
            if self.context.ok():
                raise

    def spin_forever(self) -> None:
        """Spin in the calling thread (a node's main) until Ctrl-C, then close."""
        try:
            self.executor.spin()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def close(self) -> None:
        atexit.unregister(self.close)
        if not self.context.ok():
            return
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def strip_ros_args(argv: list[str] | None) -> list[str]:
    """Drop the `--ros-args ...` that `ros2 launch` / `ros2 run` append, so argparse sees only ours."""
    import sys

    from rclpy.utilities import remove_ros_args

    return remove_ros_args(["node", *(sys.argv[1:] if argv is None else argv)])[1:]
