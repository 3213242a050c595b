"""Safety layer, parameter files and message validation of the ROS 2 hardware path (no robot needed)."""
from pathlib import Path

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hw_drivers.config import CameraConfig, CommandConfig, ParamError, load_params
from hw_drivers.conversions import (
    MessageFormatError,
    array_to_image,
    image_to_array,
    joint_state_to_arrays,
    parse_command,
)
from hw_drivers.kinematics import MujocoFK
from hw_drivers.safety import EStopLatch, SafetyLayer, UnsafeCommandError, Watchdog
from robotlearn.config import ConfigError
from robotlearn.runtime.messages import (
    EPISODE,
    MessageError,
    _encode,
    encode_weights,
    weights_version,
)
from robotlearn.runtime.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "configs/ros2/panda_sim.yaml"
NAMES = [f"j{i}" for i in range(3)]


def layer(**kw):
    return SafetyLayer(NAMES, [-1.0, -1.0, -2.0], [1.0, 1.0, 0.5], [1.0, 2.0, 1.0], dt=0.1, **kw)


def test_clips_to_joint_limits():
    q, rep = layer().filter([5.0, -5.0, 0.0], [0.95, -0.95, 0.0])
    np.testing.assert_allclose(q, [1.0, -1.0, 0.0])
    assert rep.clipped == [0, 1]


def test_rate_limits_each_joint_to_max_velocity_times_dt():
    q, rep = layer().filter([0.5, 0.5, -0.05], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(q, [0.1, 0.2, -0.05])  # 1.0 * 0.1, 2.0 * 0.1, within limit
    assert rep.rate_limited == [0, 1]
    q2, _ = layer().filter([0.5, 0.5, 0.0], [0.0, 0.0, 0.0], dt=0.02)
    np.testing.assert_allclose(q2, [0.02, 0.04, 0.0])


@pytest.mark.parametrize("bad", [[np.nan, 0, 0], [0, np.inf, 0], [0, 0, -np.inf]])
def test_refuses_non_finite_commands(bad):
    with pytest.raises(UnsafeCommandError, match="non-finite.*refused"):
        layer().filter(bad, [0, 0, 0])


def test_refuses_wrong_length():
    with pytest.raises(UnsafeCommandError, match="2 values for 3 joints"):
        layer().filter([0, 0], [0, 0, 0])


def test_workspace_box_shortens_steps_that_leave_it():
    names = [f"joint{i}" for i in range(1, 8)]
    fk = MujocoFK.from_mjcf(REPO / "sim/assets/panda.xml", names, "tcp")
    home = np.array([0.0, -0.1848, 0.0, -2.4967, 0.0, 2.3119, 0.7854])
    z0 = fk(home)[2]
    lim = load_params(PARAMS).robot.limits
    s = SafetyLayer(names, lim.joint_lower, lim.joint_upper, [10.0] * 7, dt=1.0, fk=fk,
                    workspace_low=[0.0, -1.0, z0 - 0.02], workspace_high=[1.0, 1.0, 1.0])
    down = home + np.array([0, 0.4, 0, 0.4, 0, 0, 0])  # lowers the TCP below the box floor
    assert fk(down)[2] < z0 - 0.03
    q, rep = s.filter(down, home)
    assert 0.0 < rep.workspace_scale < 1.0
    assert fk(q)[2] >= z0 - 0.02 - 1e-6 and s.ws_violation(q) == 0.0
    # from outside the box, only moves that go back inward are allowed
    q_out, _ = s.filter(home, down)
    assert s.ws_violation(q_out) < s.ws_violation(down)
    q_hold, rep2 = s.filter(down + np.array([0, 0.1, 0, 0.1, 0, 0, 0]), down)
    np.testing.assert_allclose(q_hold, down)
    assert rep2.workspace_scale == 0.0


def test_velocity_command_is_bounded():
    v = layer().velocity_command(np.array([1.0, -1.0, 0.0]), np.zeros(3))
    np.testing.assert_allclose(v, [1.0, -2.0, 0.0])


def test_estop_latches_until_released():
    e = EStopLatch()
    assert not e.engaged
    e.trigger("button")
    e.trigger("second")  # first reason kept
    assert e.engaged and e.reason == "button"
    e.release()
    assert not e.engaged


def test_watchdog_expires_only_after_timeout_since_last_feed():
    now = [0.0]
    w = Watchdog(0.3, clock=lambda: now[0])
    assert not w.expired()  # never fed: nothing to hold against yet
    w.feed()
    now[0] = 0.29
    assert not w.expired()
    now[0] = 0.31
    assert w.expired()
    w.feed()
    assert not w.expired()


# --- parameter files ---------------------------------------------------------------
def _write(tmp_path, mutate):
    data = yaml.safe_load(PARAMS.read_text())
    mutate(data)
    p = tmp_path / "robot.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_shipped_params_load():
    p = load_params(PARAMS)
    assert len(p.robot.joint_names) == 7 and p.robot.control_hz == 20.0


def test_unknown_parameter_key_is_an_error_naming_file_and_key(tmp_path):
    path = _write(tmp_path, lambda d: d["robot"]["limits"].update(max_vel=[1.0] * 7))
    with pytest.raises(ParamError, match=r"robot\.yaml: robot\.limits: unknown key\(s\) \['max_vel'\]"):
        load_params(path)


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["robot"]["limits"].update(max_velocity=[1.0] * 6), "max_velocity has 6 values"),
    (lambda d: d["robot"]["command"].update(msg_type="twist"), "command.msg_type"),
    (lambda d: d["robot"].update(control_hz="fast"), "expected a number"),
    (lambda d: d["robot"].pop("joint_names"), "missing required key 'joint_names'"),
    (lambda d: d.setdefault("env", {}).update(ee_integrate="yes"), "env.ee_integrate"),
])
def test_invalid_params_are_clear_errors(tmp_path, mutate, match):
    with pytest.raises(ParamError, match=match):
        load_params(_write(tmp_path, mutate))


def test_run_spec_files_reject_unknown_keys(tmp_path):
    p = tmp_path / "ft.yaml"
    p.write_text(yaml.safe_dump({"env": "ros2/panda_sim", "rl": {"residual_scal": 0.1}}))
    with pytest.raises(ConfigError, match="residual_scal"):
        load_spec(str(p))
    p.write_text(yaml.safe_dump({"env": "ros2/ur_arm"}))  # a robot of the user's: fine, once it names its params
    with pytest.raises(ConfigError, match=r"env.params is required: set env.params=<...> \(a ROS 2 robot"):
        load_spec(str(p))
    assert load_spec(str(p), ["env.params=ros2/panda_real.yaml"]).env["params"] == "ros2/panda_real.yaml"
    assert load_spec(str(REPO / "configs/ros2/finetune_panda_sim.yaml")).rl.num_critics == 2


# --- message validation ------------------------------------------------------------
def js(names, pos, vel=None):
    m = JointState()
    m.name, m.position, m.velocity = names, [float(x) for x in pos], [float(x) for x in (vel or [])]
    return m


def test_joint_state_is_reordered_by_name_and_validated():
    q, dq = joint_state_to_arrays(js(["j2", "j0", "j1"], [2, 0, 1], [20, 0, 10]), NAMES, "/joint_states")
    np.testing.assert_allclose(q, [0, 1, 2])
    np.testing.assert_allclose(dq, [0, 10, 20])
    with pytest.raises(MessageFormatError, match=r"/joint_states: JointState.name lacks joints \['j2'\]"):
        joint_state_to_arrays(js(["j0", "j1", "x"], [0, 1, 2]), NAMES, "/joint_states")
    with pytest.raises(MessageFormatError, match="3 names but 2 positions"):
        joint_state_to_arrays(js(NAMES, [0, 1]), NAMES, "/joint_states")
    with pytest.raises(MessageFormatError, match="non-finite"):
        joint_state_to_arrays(js(NAMES, [0, np.nan, 1]), NAMES, "/joint_states")


def test_images_are_checked_for_size_and_encoding():
    cam = CameraConfig(name="front", topic="/cam/front", height=4, width=6)
    img = np.random.default_rng(0).integers(0, 255, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(array_to_image(img, cam, stamp=JointState().header.stamp), cam), img)
    bgr = CameraConfig(name="front", topic="/cam/front", height=4, width=6, encoding="bgr8")
    np.testing.assert_array_equal(image_to_array(array_to_image(img, bgr, JointState().header.stamp), bgr), img)
    png = CameraConfig(name="front", topic="/cam/front", msg_type="compressed", height=4, width=6)
    msg = array_to_image(img, png, JointState().header.stamp)
    assert isinstance(msg, CompressedImage)
    np.testing.assert_array_equal(image_to_array(msg, png), img)

    wrong_size = CameraConfig(name="front", topic="/cam/front", height=8, width=6)
    with pytest.raises(MessageFormatError, match=r"/cam/front: image is 4x6, expected 8x6"):
        image_to_array(array_to_image(img, cam, JointState().header.stamp), wrong_size)
    mono = Image(height=4, width=6, encoding="mono8", step=6, data=bytes(24))
    with pytest.raises(MessageFormatError, match=r"/cam/front: Image.encoding is 'mono8'"):
        image_to_array(mono, cam)
    short = Image(height=4, width=6, encoding="rgb8", step=18, data=bytes(10))
    with pytest.raises(MessageFormatError, match="10 bytes"):
        image_to_array(short, cam)
    junk = CompressedImage(format="jpeg", data=b"not an image")
    with pytest.raises(MessageFormatError, match="does not decode"):
        image_to_array(junk, png)


def test_commands_are_parsed_and_bad_ones_refused():
    cfg = CommandConfig(topic="/cmd")
    np.testing.assert_allclose(parse_command(Float64MultiArray(data=[1.0, 2.0, 3.0]), cfg, NAMES), [1, 2, 3])
    with pytest.raises(MessageFormatError, match=r"/cmd: Float64MultiArray.data has 2 values for 3 joints"):
        parse_command(Float64MultiArray(data=[1.0, 2.0]), cfg, NAMES)
    with pytest.raises(UnsafeCommandError, match=r"/cmd: .*non-finite.*\['j1'\]"):
        parse_command(Float64MultiArray(data=[1.0, float("nan"), 3.0]), cfg, NAMES)
    traj = JointTrajectory(joint_names=["j1", "j2", "j0"], points=[JointTrajectoryPoint(positions=[1.0, 2.0, 0.0])])
    tcfg = CommandConfig(topic="/traj", msg_type="joint_trajectory")
    np.testing.assert_allclose(parse_command(traj, tcfg, NAMES), [0, 1, 2])
    traj.joint_names = ["j1", "j2", "elbow"]
    with pytest.raises(MessageFormatError, match=r"/traj: JointTrajectory.joint_names"):
        parse_command(traj, tcfg, NAMES)


def test_weights_version_read_from_header_only():
    assert weights_version(encode_weights(7, {"w": np.zeros(3, np.float32)})) == 7
    with pytest.raises(MessageError, match="expected a 'weights' message"):
        weights_version(_encode(EPISODE, {"a": np.zeros(2)}, {}))
    with pytest.raises(MessageError):
        weights_version(b"\x00" * 4)


def test_every_shipped_ros2_config_loads():
    from robotlearn.envs import env_config

    for path in sorted((REPO / "configs/ros2").glob("*.yaml")):
        (load_spec if path.name.startswith("finetune") else load_params)(str(path))
    for path in sorted((REPO / "configs/env/ros2").glob("*.yaml")):
        cfg = env_config(f"ros2/{path.stem}")
        assert cfg["_target_"] == "hw_drivers.ros2_env.Ros2RobotEnv"
        if path.stem == "custom":  # the entry for robots of the user's: it requires their params
            assert cfg["params"] == "???"
            continue
        load_params(REPO / "configs" / cfg["params"], cfg["overrides"])


def test_joy_intervention_maps_axes_behind_a_deadman(tmp_path):
    from sensor_msgs.msg import Joy

    from hw_drivers.ros2_env import Ros2RobotEnv

    iv = {"msg_type": "joy", "topic": "/joy", "deadman_button": 1, "axes": [0, 1, -1, -1, -1, -1, -1, 2],
          "scale": 0.5}
    env = Ros2RobotEnv(str(PARAMS), overrides={"robot.intervention": iv, "dds.domain_id": 231})
    try:
        cfg = env.p.robot.intervention
        assert env._intervention(Joy(axes=[1.0, -0.4, 3.0], buttons=[1, 0]), cfg) is None  # deadman released
        a = env._intervention(Joy(axes=[1.0, -0.4, 3.0], buttons=[0, 1]), cfg)
        np.testing.assert_allclose(a, [0.5, -0.2, 0, 0, 0, 0, 0, 1.0])  # scaled, unmapped 0, clipped to 1
        with pytest.raises(UnsafeCommandError):
            env._intervention(Joy(axes=[float("nan"), 0.0, 0.0], buttons=[0, 1]), cfg)
    finally:
        env.close()
    with pytest.raises(Exception, match="one entry per action dimension"):
        Ros2RobotEnv(str(PARAMS), overrides={"robot.intervention": {**iv, "axes": [0, 1]}, "dds.domain_id": 231})


@pytest.mark.parametrize("mode", ["joint_pos", "joint_delta"])
def test_action_modes_map_through_the_safety_layer(mode):
    from hw_drivers.ros2_env import Ros2RobotEnv

    env = Ros2RobotEnv(str(PARAMS), overrides={"env.action_mode": mode, "dds.domain_id": 231})
    try:
        lim = env.p.robot.limits
        lo, hi, step = np.array(lim.joint_lower), np.array(lim.joint_upper), np.array(lim.max_velocity) / 20.0
        env._target = home = np.array([0.0, -0.1848, 0.0, -2.4967, 0.0, 2.3119, 0.7854])
        a = np.zeros(8, np.float32)
        a[0], a[7] = 1.0, -1.0
        q, _ = env._to_joint_targets(a)
        if mode == "joint_pos":  # +1 -> upper limit, 0 -> mid range; every joint at most one step away
            want = np.clip((lo + hi) / 2, home - step, home + step)
            want[0] = home[0] + step[0]
        else:  # +1 -> one full step, 0 -> stay
            want = home.copy()
            want[0] += step[0]
        np.testing.assert_allclose(q, want, atol=1e-9)
        assert env._gripper == pytest.approx(0.08)  # -1 -> open width
        assert env.env_info.action_spec.kind == f"{mode}+gripper"
    finally:
        env.close()
