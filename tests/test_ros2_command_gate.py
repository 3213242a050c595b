"""CommandGate (the robot-side command path of the MuJoCo node and the safety bridge) without DDS:
stale commands - computed from an observation older than robot.max_command_age_s, or stamped in the
future - are dropped and can neither move the target nor release a watchdog hold."""
import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from hw_drivers.command_gate import COMMAND_CLOCK_SKEW_S, CommandGate
from hw_drivers.config import ParamError, load_params
from hw_drivers.conversions import STAMP_LABEL
from hw_drivers.safety import SafetyLayer

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "configs/ros2/panda_sim.yaml"
HOME = np.array([0.0, -0.1848, 0.0, -2.4967, 0.0, 2.3119, 0.7854])


class Log:
    def __init__(self):
        self.lines = {"info": [], "warning": [], "error": []}

    def info(self, msg):
        self.lines["info"].append(msg)

    def warning(self, msg):
        self.lines["warning"].append(msg)

    def error(self, msg):
        self.lines["error"].append(msg)


def make_gate(**robot_overrides):
    p = load_params(PARAMS, {f"robot.{k}": v for k, v in robot_overrides.items()})
    lim = p.robot.limits
    safety = SafetyLayer(p.robot.joint_names, lim.joint_lower, lim.joint_upper, lim.max_velocity,
                         dt=1.0 / p.robot.control_hz)
    measured = HOME.copy()
    return CommandGate(p, safety, lambda: measured.copy(), Log(), min_dt=0.01), measured


def cmd(q, age_s=None):
    """A Float64MultiArray command as Ros2RobotEnv sends it: stamped with its observation's time, age_s ago."""
    msg = Float64MultiArray(data=[float(x) for x in q])
    if age_s is not None:
        stamp = time.time_ns() - int(age_s * 1e9)
        msg.layout.dim = [MultiArrayDimension(label=f"{STAMP_LABEL}{stamp}", size=len(q), stride=len(q))]
    return msg


def expire_watchdog(gate):
    gate.watchdog.last = time.monotonic() - 10.0  # fed long ago: the next update() holds
    gate.update(0.01)
    assert gate.hold


def test_age_limit_defaults_to_the_watchdog_timeout_and_0_turns_it_off(tmp_path):
    data = yaml.safe_load(PARAMS.read_text())
    data["robot"].pop("max_command_age_s", None)
    data["robot"]["watchdog_timeout_s"] = 0.7
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    r = load_params(path).robot
    assert r.max_command_age_s is None and r.command_age_limit_s() == 0.7
    assert load_params(path, {"robot.max_command_age_s": 0.0}).robot.command_age_limit_s() is None
    assert load_params(path, {"robot.max_command_age_s": 0.2}).robot.command_age_limit_s() == 0.2
    with pytest.raises(ParamError, match=r"robot\.max_command_age_s must be >= 0"):
        load_params(path, {"robot.max_command_age_s": -1.0})
    for name in ("panda_sim.yaml", "panda_real.yaml"):  # the shipped robots set it explicitly
        r = load_params(REPO / "configs/ros2" / name).robot
        assert r.max_command_age_s is not None and 0 < r.max_command_age_s <= r.watchdog_timeout_s


def test_fresh_command_moves_the_target_and_feeds_the_watchdog():
    gate, _ = make_gate(max_command_age_s=0.3)
    gate.on_command(cmd(HOME + 0.001, age_s=0.05))
    np.testing.assert_allclose(gate.target, HOME + 0.001)
    assert gate.watchdog.last is not None and gate.n_stale == 0 and gate.status()["stale_commands"] == 0


def test_stale_command_does_not_release_the_hold_nor_move_the_target():
    gate, measured = make_gate(max_command_age_s=0.3)
    gate.on_command(cmd(HOME + 0.001, age_s=0.05))
    measured += 0.0005  # the robot settles a little before the watchdog holds it
    expire_watchdog(gate)
    held, fed_at = gate.target.copy(), gate.watchdog.last
    np.testing.assert_allclose(held, HOME + 0.0005)
    for age in (0.31, 1.5, 2.0):  # a burst of late-delivered commands
        gate.on_command(cmd(HOME + 0.01, age_s=age))
        assert gate.hold
        np.testing.assert_array_equal(gate.update(0.01), held)
    assert gate.watchdog.last == fed_at  # not fed: the hold stays until a fresh command
    assert gate.n_stale == 3 and gate.n_rejected == 0
    st = gate.status()
    assert st["stale_commands"] == 3 and st["watchdog_hold"]
    assert re.search(r"^/forward_position_controller/commands: stale command, observation 20\d\d ms old",
                     st["last_error"])
    # commands resume: a fresh one releases the hold, stepping from the measured position
    gate.on_command(cmd(HOME + 0.001, age_s=0.02))
    assert not gate.hold and gate.watchdog.last > fed_at
    np.testing.assert_allclose(gate.target, HOME + 0.001)


def test_future_stamped_command_is_rejected():
    gate, _ = make_gate(max_command_age_s=0.3)
    expire_watchdog(gate)
    held = gate.target.copy()
    gate.on_command(cmd(HOME + 0.01, age_s=-(COMMAND_CLOCK_SKEW_S + 0.5)))
    assert gate.hold and gate.n_stale == 1
    np.testing.assert_array_equal(gate.target, held)
    assert "in the future" in gate.last_error and "clocks synchronised" in gate.last_error
    gate.on_command(cmd(HOME + 0.001, age_s=-COMMAND_CLOCK_SKEW_S / 5))  # within the skew allowance
    assert not gate.hold and gate.n_stale == 1


def test_unstamped_commands_and_a_disabled_check_are_accepted():
    gate, _ = make_gate(max_command_age_s=0.3)
    expire_watchdog(gate)
    gate.on_command(cmd(HOME + 0.001))  # a plain controller: no stamp, nothing to check
    assert not gate.hold and gate.n_stale == 0
    np.testing.assert_allclose(gate.target, HOME + 0.001)
    off, _ = make_gate(max_command_age_s=0.0)
    expire_watchdog(off)
    off.on_command(cmd(HOME + 0.001, age_s=5.0))
    assert not off.hold and off.n_stale == 0


def test_zero_stamp_names_the_likely_cause():
    gate, _ = make_gate()
    msg = cmd(HOME)
    msg.layout.dim = [MultiArrayDimension(label=f"{STAMP_LABEL}0", size=7, stride=7)]
    gate.on_command(msg)
    assert gate.n_stale == 1 and "stamp is 0" in gate.last_error and "/joint_states" in gate.last_error


def test_stale_warnings_are_throttled():
    gate, _ = make_gate(max_command_age_s=0.3)
    for _ in range(50):  # one second of a late burst at 50 Hz
        gate.on_command(cmd(HOME, age_s=1.0))
    assert gate.n_stale == 50
    assert len(gate.log.lines["warning"]) == 1 and "1 stale command(s)" in gate.log.lines["warning"][0]
    assert not gate.log.lines["error"]


def test_status_says_when_the_gate_awaits_its_first_command_after_a_reset():
    gate, _ = make_gate(max_command_age_s=0.5)
    assert gate.status()["awaiting_command"] and not gate.status()["watchdog_hold"]
    gate.update(0.01)  # no command since the reset: nothing expires, the reset pose is held
    assert not gate.hold and np.allclose(gate.target, HOME)
    gate.on_command(cmd(HOME + 0.01, age_s=0.01))
    assert not gate.status()["awaiting_command"]
    gate.reset(HOME)
    assert gate.status()["awaiting_command"]
