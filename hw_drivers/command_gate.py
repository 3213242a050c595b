"""The robot-side command path, shared by the MuJoCo robot node and the safety bridge node.

Every incoming command is validated (names/length/NaN -> rejected, logged with the
topic and field, never applied), dropped while the e-stop is latched, dropped as stale
when its observation stamp is older than `max_command_age_s` (or from the future), and
filtered by the safety layer against the last target; `update()` then applies the
watchdog: no valid, fresh command for `watchdog_timeout_s` -> hold the measured
position. A stale command never feeds the watchdog nor releases its hold, so commands
delivered late in a burst cannot move the robot from a hold. The latch is released
only by `try_release()` (the reset service) once the e-stop topic reads False.
"""
from __future__ import annotations

import collections
import dataclasses
import time
from typing import Callable, Optional

import numpy as np
from std_msgs.msg import Bool

from hw_drivers.config import NodeParams
from hw_drivers.conversions import MessageFormatError, command_obs_stamp, parse_command
from hw_drivers.safety import EStopLatch, SafetyLayer, UnsafeCommandError, Watchdog

COMMAND_CLOCK_SKEW_S = 0.05  # a command's observation stamp may be this far in the robot side's future (clock skew)
STALE_WARN_PERIOD_S = 1.0  # at most one stale-command warning per period (commands arrive at 10-100 Hz)


class CommandGate:
    def __init__(self, p: NodeParams, safety: SafetyLayer, measured_q: Callable[[], np.ndarray], logger,
                 min_dt: float, topic: Optional[str] = None) -> None:
        self.p, self.safety, self.measured_q, self.log = p, safety, measured_q, logger
        self.topic = topic or p.robot.command.topic
        self.cmd_cfg = dataclasses.replace(p.robot.command, topic=self.topic)  # names the topic in errors
        self.min_dt = min_dt  # shortest time credited between two commands (one robot tick)
        self.estop = EStopLatch()
        self.estop_input = False
        self.watchdog = Watchdog(p.robot.watchdog_timeout_s)
        self.n_rejected, self.last_error = 0, ""
        self.max_age_s = p.robot.command_age_limit_s()  # None: no stale-command check
        self.n_stale, self._stale_unlogged, self._stale_warned_at = 0, 0, -float("inf")
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=2000)  # state stamp -> command
        self.reset(measured_q())

    def reset(self, q: np.ndarray) -> None:
        self.target = np.asarray(q, float).copy()
        self.velocity: Optional[np.ndarray] = None
        self.hold = False
        self.watchdog.disarm()
        self.last_cmd_time = time.monotonic()

    def _reject(self, err: Exception) -> None:
        self.n_rejected += 1
        self.last_error = str(err)
        self.log.error(f"command rejected, robot not commanded: {err}")

    def _stale(self, stamp: int, age_s: float) -> None:
        """Drop a command computed from an observation too old (or from the future): not applied, no watchdog feed."""
        self.n_stale += 1
        if stamp == 0:
            why = (f"observation stamp is 0 (is {self.p.robot.state_topic} published without header stamps? "
                   f"stamp it, or set robot.max_command_age_s: 0)")
        elif age_s < 0:
            why = (f"observation stamp {-age_s * 1e3:.0f} ms in the future (more than {COMMAND_CLOCK_SKEW_S * 1e3:.0f} "
                   f"ms clock skew: are the clocks synchronised?)")
        else:
            why = f"observation {age_s * 1e3:.0f} ms old (robot.max_command_age_s = {self.max_age_s:g} s)"
        self.last_error = f"{self.topic}: stale command, {why} - not applied"
        self._stale_unlogged += 1
        now = time.monotonic()
        if now - self._stale_warned_at >= STALE_WARN_PERIOD_S:  # throttled: a late burst is tens of commands
            self.log.warning(f"{self._stale_unlogged} stale command(s) dropped, robot not commanded by them; "
                             f"last: {self.last_error}")
            self._stale_warned_at, self._stale_unlogged = now, 0

    def on_command(self, msg) -> None:
        r = self.p.robot
        stamp = command_obs_stamp(msg)
        age_s = None
        if stamp is not None:
            age_s = (time.time_ns() - stamp) / 1e9
            self.latency_ms.append(age_s * 1e3)
        try:
            vals = parse_command(msg, self.cmd_cfg, r.joint_names)
        except (MessageFormatError, UnsafeCommandError) as e:
            return self._reject(e)
        if self.estop.engaged:
            return
        if age_s is not None and self.max_age_s is not None and not (-COMMAND_CLOCK_SKEW_S <= age_s <= self.max_age_s):
            return self._stale(stamp, age_s)
        now = time.monotonic()
        # rate limit over the time since the previous command, credited at least one tick
        dt = float(np.clip(now - self.last_cmd_time, self.min_dt, r.watchdog_timeout_s))
        self.last_cmd_time = now
        if r.command.mode == "velocity":
            self.velocity = np.clip(vals, -self.safety.max_velocity, self.safety.max_velocity)
        else:
            ref = self.measured_q() if self.hold else self.target
            try:
                self.target, _ = self.safety.filter(vals, ref, dt=dt, what=self.topic)
            except UnsafeCommandError as e:
                return self._reject(e)
        self.hold = False
        self.watchdog.feed()

    def on_estop(self, msg: Bool) -> None:
        self.estop_input = bool(msg.data)
        if msg.data and not self.estop.engaged:
            self.estop.trigger(f"{self.p.robot.estop_topic} = True")
            self.target, self.velocity = self.measured_q(), None
            self.log.warning("E-STOP latched: holding position until reset with e-stop released")

    def try_release(self) -> tuple[bool, str]:
        """Reset service hook: release the latch unless the e-stop input still reads True."""
        if self.estop.engaged and self.estop_input:
            return False, f"e-stop engaged ({self.p.robot.estop_topic} is still True)"
        self.estop.release()
        return True, ""

    def update(self, dt: float) -> np.ndarray:
        """Once per robot tick: watchdog check, velocity integration; returns the joint target to command."""
        if self.watchdog.expired() and not self.hold:
            self.hold, self.target, self.velocity = True, self.measured_q(), None
            self.log.warning(f"watchdog: no command on {self.topic} for {self.watchdog.age():.2f}s, holding position")
        if self.velocity is not None and not self.hold and not self.estop.engaged:
            self.target, _ = self.safety.filter(self.target + self.velocity * dt, self.target, dt=dt)
        return self.target

    def status(self) -> dict:
        s = {"estop": self.estop.engaged, "watchdog_hold": self.hold,
             "awaiting_command": self.watchdog.last is None,  # reset, no command since: holding the reset pose
             "rejected_commands": self.n_rejected,
             "stale_commands": self.n_stale, "last_error": self.last_error, "target": [float(x) for x in self.target],
             "obs_to_command_ms": list(self.latency_ms)}  # samples since the previous status
        self.latency_ms.clear()
        return s
