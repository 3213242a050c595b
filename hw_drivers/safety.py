"""The safety layer between any policy and a robot: limits, rate limits, e-stop, watchdog.

Both ends apply it: `Ros2RobotEnv` before it publishes, and the robot node before
it commands the joints, so a buggy or malicious publisher on the command topic is
stopped on the robot side too. Rules:
  * non-finite commands are refused outright (UnsafeCommandError) - never "fixed";
  * targets are clipped to joint limits, then each step is rate-limited to
    max_velocity * dt from the reference (last command or measured position);
  * an optional workspace box on the end effector (via a forward-kinematics callable)
    shortens a step that would leave the box; a step from outside may only move inward;
  * an e-stop latch, once triggered, holds until explicitly released;
  * a watchdog reports when commands stopped for longer than its timeout, so the
    robot holds position instead of chasing a stale target.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


class UnsafeCommandError(ValueError):
    """A command the robot must never execute (NaN/inf, wrong length)."""


@dataclass
class SafetyReport:
    clipped: list[int] = field(default_factory=list)  # joints clipped to limits
    rate_limited: list[int] = field(default_factory=list)  # joints whose step was shortened
    workspace_scale: float = 1.0  # fraction of the step kept by the workspace box

    @property
    def modified(self) -> bool:
        return bool(self.clipped or self.rate_limited or self.workspace_scale < 1.0)


def check_finite(values, what: str, names: Optional[list[str]] = None) -> np.ndarray:
    """Return `values` as float64, or raise naming the non-finite entries."""
    a = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        labels = [names[i] if names and i < len(names) else str(i) for i in bad]
        raise UnsafeCommandError(f"{what}: non-finite value(s) at {labels}: {a.tolist()} - refused, not commanded")
    return a


class SafetyLayer:
    """Joint-space command filter. `dt` is the period between filtered commands."""

    def __init__(
        self,
        joint_names: list[str],
        lower,
        upper,
        max_velocity,
        dt: float,
        fk: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        workspace_low=None,
        workspace_high=None,
    ) -> None:
        self.names = list(joint_names)
        self.lower = np.asarray(lower, np.float64)
        self.upper = np.asarray(upper, np.float64)
        self.max_velocity = np.asarray(max_velocity, np.float64)
        self.dt = float(dt)
        self.fk = fk
        self.ws_low = None if workspace_low is None or len(workspace_low) == 0 else np.asarray(workspace_low, float)
        self.ws_high = None if workspace_high is None or len(workspace_high) == 0 else np.asarray(workspace_high, float)
        if (self.ws_low is not None) and fk is None:
            raise ValueError("a workspace limit needs forward kinematics (fk) to be enforced")

    @property
    def max_step(self) -> np.ndarray:
        return self.max_velocity * self.dt

    def _check(self, q: np.ndarray, what: str) -> np.ndarray:
        if q.shape != self.lower.shape:
            raise UnsafeCommandError(f"{what}: {q.shape[0] if q.ndim else 'scalar'} values for "
                                     f"{len(self.names)} joints {self.names}")
        return q

    def ws_violation(self, q: np.ndarray) -> float:
        """Distance (m) of the end effector outside the workspace box; 0 inside or without a box."""
        if self.ws_low is None:
            return 0.0
        p = np.asarray(self.fk(q), float)
        return float(np.linalg.norm(np.maximum(self.ws_low - p, 0) + np.maximum(p - self.ws_high, 0)))

    def filter(self, q_target, q_ref, dt: Optional[float] = None, what: str = "command") -> tuple[np.ndarray, SafetyReport]:
        """Safe joint target reachable from `q_ref` within one step of `dt` (default self.dt)."""
        q_target = self._check(check_finite(q_target, what, self.names), what)
        q_ref = self._check(check_finite(q_ref, f"{what} (reference position)", self.names), what)
        rep = SafetyReport()
        q = np.clip(q_target, self.lower, self.upper)
        rep.clipped = np.flatnonzero(q != q_target).tolist()
        step_max = self.max_velocity * (self.dt if dt is None else dt)
        step = q - np.clip(q_ref, self.lower, self.upper)
        limited = np.clip(step, -step_max, step_max)
        rep.rate_limited = np.flatnonzero(np.abs(limited - step) > 1e-12).tolist()
        base = np.clip(q_ref, self.lower, self.upper)
        q = base + limited
        if self.ws_low is not None:
            q, rep.workspace_scale = self._workspace(base, q)
        return q, rep

    def _workspace(self, base: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float]:
        v_end, v_base = self.ws_violation(q), self.ws_violation(base)
        if v_end <= 0.0:
            return q, 1.0
        if v_base > 0.0:  # already outside: only steps that move back inward
            return (q, 1.0) if v_end < v_base else (base, 0.0)
        lo, hi = 0.0, 1.0  # bisect the largest fraction of the step that stays inside
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            if self.ws_violation(base + mid * (q - base)) <= 0.0:
                lo = mid
            else:
                hi = mid
        return base + lo * (q - base), lo

    def velocity_command(self, q_safe: np.ndarray, q_meas: np.ndarray, dt: Optional[float] = None) -> np.ndarray:
        """For forward velocity controllers: the velocity that reaches q_safe in dt, within max_velocity."""
        v = (q_safe - np.asarray(q_meas, float)) / (self.dt if dt is None else dt)
        return np.clip(v, -self.max_velocity, self.max_velocity)


class EStopLatch:
    """Once triggered, stays engaged until `release()`; every node checks `engaged` before commanding."""

    def __init__(self) -> None:
        self.engaged = False
        self.reason = ""
        self.since = 0.0

    def trigger(self, reason: str) -> None:
        if not self.engaged:
            self.engaged, self.reason, self.since = True, reason, time.time()

    def release(self) -> None:
        self.engaged, self.reason = False, ""


class Watchdog:
    """Reports `expired()` when `feed()` has not been called for `timeout_s` (robot-side command watchdog)."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = float(timeout_s)
        self.clock = clock
        self.last: Optional[float] = None  # never fed: not expired, there is nothing to hold against

    def feed(self) -> None:
        self.last = self.clock()

    def age(self) -> float:
        return float("inf") if self.last is None else self.clock() - self.last

    def expired(self) -> bool:
        return self.last is not None and self.age() > self.timeout_s

    def disarm(self) -> None:
        self.last = None
