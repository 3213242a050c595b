"""Latest-message cache with age checks: how `Ros2RobotEnv` builds observations.

Each subscribed topic keeps only its newest *validated* value and the local
receive time. Reading a value older than its limit raises `StaleObservationError`
naming the topic and the age, so a policy never acts on a frozen camera or a
dead driver; a message that fails validation is kept as an error and raised on
the next read, naming the topic and field.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from robotlearn.envs import EnvError


class StaleObservationError(EnvError):
    """A sensor topic has not delivered a (valid) message recently enough to act on."""


class BadMessageError(EnvError, ValueError):
    """The newest message on a topic failed validation (wrong joints, image size, NaN...)."""


@dataclass
class _Slot:
    value: Any = None
    stamp: float = 0.0  # time.monotonic() at receipt
    count: int = 0
    error: Optional[str] = None
    gaps: deque = field(default_factory=lambda: deque(maxlen=32))  # the last receipt intervals, s


class TopicCache:
    """Thread-safe newest-value store filled by subscription callbacks."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Condition()  # notified on every message (wait_newer)

    def subscribe(self, node, msg_type, topic: str, qos, convert: Callable[[Any], Any]) -> None:
        self._slots[topic] = _Slot()

        def cb(msg, topic=topic):
            try:
                value, err = convert(msg), None
            except ValueError as e:  # MessageFormatError / UnsafeCommandError
                value, err = None, str(e)
            with self._lock:
                slot = self._slots[topic]
                if err is None:
                    slot.value, slot.error = value, None
                else:
                    slot.error = err
                now = time.monotonic()
                if slot.count:
                    slot.gaps.append(now - slot.stamp)
                slot.stamp = now
                slot.count += 1
                self._lock.notify_all()

        node.create_subscription(msg_type, topic, cb, qos)

    def count(self, topic: str) -> int:
        with self._lock:
            return self._slots[topic].count

    def age(self, topic: str) -> float:
        with self._lock:
            s = self._slots[topic]
            return float("inf") if s.count == 0 else time.monotonic() - s.stamp

    def get(self, topic: str, max_age: float) -> Any:
        """Newest valid value; raises if it is older than `max_age` s or the newest message was bad."""
        with self._lock:
            s = self._slots[topic]
            if s.error is not None:
                raise BadMessageError(f"{topic}: {s.error}")
            if s.count == 0:
                raise StaleObservationError(f"{topic}: no message received yet")
            age = time.monotonic() - s.stamp
            if age > max_age:
                raise StaleObservationError(f"{topic}: last message is {age:.3f}s old (limit {max_age:.3f}s); "
                                            "refusing to act on stale data")
            return s.value

    def peek(self, topic: str, max_age: float = float("inf")) -> Any:
        """Newest valid value or None (no raise): for optional inputs like teleop and labels."""
        with self._lock:
            s = self._slots[topic]
            if s.count == 0 or s.error is not None or time.monotonic() - s.stamp > max_age:
                return None
            return s.value

    def clear(self, topic: str) -> None:
        with self._lock:
            self._slots[topic] = _Slot()

    def received_at(self, topic: str) -> float:
        """time.monotonic() at which the newest message on `topic` arrived (0.0 before any)."""
        with self._lock:
            return self._slots[topic].stamp

    def period(self, topic: str) -> float | None:
        """Median interval (s) between the last messages on `topic`; None before 8 intervals."""
        with self._lock:
            gaps = self._slots[topic].gaps
            return float(np.median(gaps)) if len(gaps) >= 8 else None

    def wait_newer(self, topic: str, count: int, timeout: float) -> bool:
        """Block (at most `timeout` s) until `topic` has more than `count` messages; True if it has."""
        with self._lock:
            return self._lock.wait_for(lambda: self._slots[topic].count > count, timeout)

    def wait_new(self, topics: list[str], after_counts: dict[str, int], n: int, timeout: float) -> None:
        """Block until each topic got `n` messages beyond `after_counts` (e.g. after a reset)."""
        def missing() -> list[str]:
            return [t for t in topics if self._slots[t].count - after_counts.get(t, 0) < n]

        with self._lock:  # woken on every message
            if not self._lock.wait_for(lambda: not missing(), timeout):
                raise StaleObservationError(f"no new message within {timeout:.1f}s on {missing()}")
