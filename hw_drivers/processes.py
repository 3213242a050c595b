"""Start the ROS 2 nodes as separate processes and watch them: used by the dry run, tests and benchmark.

Nodes are started as `python -m hw_drivers.<node> --params ...`, exactly what the
console scripts and launch files run. `Watcher` listens to the robot status and
actor heartbeats from the calling process, over the same DDS domain.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from sensor_msgs.msg import JointState
from std_msgs.msg import String

from hw_drivers.config import DdsConfig
from hw_drivers.ros_runtime import RELIABLE_QOS, SENSOR_QOS, RosNode

REPO = Path(__file__).resolve().parents[1]


def node_env(domain_id: int, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", OMP_NUM_THREADS="1",
               MUJOCO_GL=env.get("MUJOCO_GL", "egl"), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_LOG_DIR", str(Path("/tmp") / f"robotlearn-ros-logs-{os.getuid()}"))
    env.update(extra or {})
    return env


def start(module: str, args: list[str], domain_id: int, log_path: Path | str,
          extra_env: Optional[dict[str, str]] = None) -> subprocess.Popen:
    """`python -m hw_drivers.<module> args...` with stdout+stderr to `log_path`."""
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", f"hw_drivers.{module}", *args], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, env=node_env(domain_id, extra_env), start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 10.0, sig: int = signal.SIGINT) -> Optional[int]:
    """Ask a node to stop (SIGINT), SIGKILL it after `timeout`; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def stop_all(procs: dict[str, subprocess.Popen], logs: dict[str, Path], tail: int = 2500) -> None:
    """Stop every node (as `stop`), then print the end of each one's log: what a failed test shows."""
    for p in procs.values():
        stop(p, timeout=10)
    for name, path in logs.items():
        if Path(path).exists():
            print(f"----- {name} -----\n{Path(path).read_text()[-tail:]}")


def wait_until(cond: Callable[[], Any], timeout: float, what: str, procs: tuple = (), poll: float = 0.05) -> Any:
    """Poll `cond` until truthy; fail early (naming the process log) if a watched process died."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args} exited with {p.returncode} while waiting")
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Watcher:
    """Collects the robot node status and actor/learner heartbeats on one domain."""

    def __init__(self, domain_id: int, status_topic: str = "/robot/status", namespace: str = "/robotlearn",
                 state_topic: str = "/joint_states") -> None:
        self.ros = RosNode("robotlearn_watcher", DdsConfig(domain_id=domain_id, localhost_only=True))
        self.lock = threading.Lock()
        self.status: list[tuple[float, dict]] = []
        self.actor: list[tuple[float, dict]] = []
        self.learner: list[tuple[float, dict]] = []
        n = self.ros.node
        n.create_subscription(String, status_topic, lambda m: self._add(self.status, m.data), RELIABLE_QOS)
        n.create_subscription(String, f"{namespace}/heartbeat",
                              lambda m: self._add(self.actor, m.data, "stats"), RELIABLE_QOS)
        n.create_subscription(String, f"{namespace}/learner_heartbeat",
                              lambda m: self._add(self.learner, m.data), RELIABLE_QOS)
        self.joint_positions: Optional[list[float]] = None
        n.create_subscription(JointState, state_topic, self._on_js, SENSOR_QOS)

    def _on_js(self, msg: JointState) -> None:
        self.joint_positions = list(msg.position)

    def _add(self, into: list, data: str, key: Optional[str] = None) -> None:
        d = json.loads(data)
        with self.lock:
            into.append((time.monotonic(), d[key] if key else d))

    def last(self, which: str) -> Optional[dict]:
        with self.lock:
            items = getattr(self, which)
            return items[-1][1] if items else None

    def since(self, which: str, t: float) -> list[dict]:
        with self.lock:
            return [d for ts, d in getattr(self, which) if ts >= t]

    def close(self) -> None:
        self.ros.close()
