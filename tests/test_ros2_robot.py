"""Ros2RobotEnv against a live MuJoCo robot node in a separate process, over real DDS on loopback.

Covers the env contract (the conformance checks that apply to hardware), bad commands,
the robot-side watchdog and e-stop, human interventions and labels, and a silenced camera.
"""
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conformance import CHECKS  # tests/ is on sys.path
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool

from hw_drivers.config import DdsConfig
from hw_drivers.processes import Watcher, start, stop, wait_until
from hw_drivers.ros2_env import Ros2RobotEnv
from hw_drivers.ros_runtime import RELIABLE_QOS, RosNode
from hw_drivers.sensors import BadMessageError, StaleObservationError
from robotlearn.envs import EnvError

REPO = Path(__file__).resolve().parents[1]
# ROS_DOMAIN_IDs per module: robot 10-29 (+20, +21), transport 60-79, e2e 110-129, bridge 200-219
DOMAIN = 10 + os.getpid() % 20
CAM_TOPIC = "/camera/front/image_raw"


@pytest.fixture(scope="module")
def robot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ros2_robot")
    params = yaml.safe_load((REPO / "configs/ros2/panda_sim.yaml").read_text())
    params["robot"]["cameras"] = [dict(name="front", topic=CAM_TOPIC, height=32, width=32, mujoco_camera="front")]
    params["robot"]["control_hz"] = 50.0
    params["env"]["horizon"] = 20
    params["robot"]["staleness"].update(state_s=1.0, camera_s=1.0)  # CI machines are busy; the limits are what's tested
    path = tmp / "panda_cam.yaml"
    path.write_text(yaml.safe_dump(params))
    proc = start("mujoco_robot_node", ["--params", str(path), "--domain-id", str(DOMAIN)], DOMAIN, tmp / "node.log")
    watcher = Watcher(DOMAIN)
    env = None
    try:
        wait_until(lambda: watcher.last("status"), 60, "robot node status", (proc,))
        env = Ros2RobotEnv(str(path), overrides={"dds.domain_id": DOMAIN})
        helper = RosNode("test_helper", DdsConfig(domain_id=DOMAIN))
        yield env, watcher, helper, proc, tmp
        helper.close()
    finally:
        if env is not None:
            env.close()
        watcher.close()
        stop(proc)
        print((tmp / "node.log").read_text()[-3000:])


def status_after(watcher, t):
    return wait_until(lambda: (watcher.since("status", t) or [None])[-1], 5, "a fresh robot status")


@pytest.mark.parametrize("check", [c for c in CHECKS if c != "seeded_reset"])  # a robot is not deterministic
def test_conformance_on_live_robot(robot, check):
    CHECKS[check](robot[0], False)


def test_actions_move_the_robot_and_images_arrive(robot):
    env = robot[0]
    obs, _ = env.reset(seed=0)
    assert obs["images/front"].shape == (32, 32, 3) and obs["images/front"].std() > 0
    q0 = obs["state"][:7].copy()
    a = np.zeros(8, np.float32)
    a[0] = 1.0  # joint 1 at full delta: max_velocity / control_hz per step
    for _ in range(10):
        obs, *_ = env.step(a)
    moved = obs["state"][0] - q0[0]
    assert 0.1 < moved <= 10 * 1.0 / 50 + 0.02, moved  # moved, but never faster than the velocity limit
    np.testing.assert_allclose(obs["state"][1:7], q0[1:7], atol=0.05)


def test_bad_commands_are_rejected_and_never_applied(robot):
    env, watcher, helper, _, _ = robot
    env.reset(seed=1)
    time.sleep(0.5)  # env idle: the watchdog holds, the target is fixed
    before = status_after(watcher, time.monotonic())
    pub = helper.node.create_publisher(Float64MultiArray, "/forward_position_controller/commands", RELIABLE_QOS)
    wait_until(lambda: pub.get_subscription_count() > 0, 5, "command subscriber")
    pub.publish(Float64MultiArray(data=[float("nan")] * 7))
    pub.publish(Float64MultiArray(data=[0.5] * 6))
    pub.publish(Float64MultiArray(data=[0.1, 0.0, 0.0, -2.0, 0.0, float("inf"), 0.0]))
    after = wait_until(lambda: next((s for s in watcher.since("status", time.monotonic() - 0.1)
                                     if s["rejected_commands"] >= before["rejected_commands"] + 3), None),
                       5, "three rejected commands")
    assert "Float64MultiArray.data" in after["last_error"] and "/forward_position_controller/commands" in after["last_error"]
    np.testing.assert_allclose(after["target"], before["target"])


def test_watchdog_holds_position_when_commands_stop(robot):
    env, watcher = robot[0], robot[1]
    env.reset(seed=2)
    a = np.zeros(8, np.float32)
    a[1] = 1.0
    for _ in range(5):
        env.step(a)
    assert not status_after(watcher, time.monotonic())["watchdog_hold"]
    wait_until(lambda: (watcher.since("status", time.monotonic() - 0.1) or [{}])[-1].get("watchdog_hold"),
               3, "watchdog hold")
    q1 = env._observe()["state"][:7]
    time.sleep(0.5)
    q2 = env._observe()["state"][:7]
    np.testing.assert_allclose(q2, q1, atol=2e-3)


def test_estop_latches_on_robot_and_env_until_released(robot):
    env, watcher, helper = robot[0], robot[1], robot[2]
    env.reset(seed=3)
    env.trigger_estop("test")
    _, _, term, _, info = env.step(np.ones(8, np.float32))
    assert term and "estop" in info
    st = wait_until(lambda: next((s for s in watcher.since("status", time.monotonic() - 0.1) if s["estop"]), None),
                    5, "robot e-stop status")
    pub = helper.node.create_publisher(Float64MultiArray, "/forward_position_controller/commands", RELIABLE_QOS)
    wait_until(lambda: pub.get_subscription_count() > 0, 5, "command subscriber")
    pub.publish(Float64MultiArray(data=[x + 0.05 for x in st["target"]]))
    time.sleep(0.3)
    np.testing.assert_allclose(status_after(watcher, time.monotonic())["target"], st["target"])
    with pytest.raises(EnvError, match="e-stop engaged"):
        env.reset(seed=3)
    env.pub_estop.publish(Bool(data=False))  # operator releases the button, then resets
    time.sleep(0.2)
    env.reset(seed=3)
    assert not status_after(watcher, time.monotonic())["estop"]
    _, _, term, _, info = env.step(np.zeros(8, np.float32))
    assert not term and "estop" not in info


def test_teleop_recording_stores_what_the_human_made_the_robot_do(robot):
    """`collect teleop=true`: no policy, every step is the human's executed action (not the policy's zero)."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.data import EpisodeDataset

    _, _, helper, _, tmp = robot
    pub = helper.node.create_publisher(Float64MultiArray, "/teleop/action", RELIABLE_QOS)
    human = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0]
    done = threading.Event()

    def teleop():
        while not done.is_set():
            pub.publish(Float64MultiArray(data=human))
            time.sleep(0.02)

    th = threading.Thread(target=teleop, daemon=True)
    th.start()
    env_cfg = {"_target_": "hw_drivers.ros2_env.Ros2RobotEnv", "params": str(tmp / "panda_cam.yaml"),
               "overrides": {"dds.domain_id": DOMAIN}}
    try:
        time.sleep(0.3)
        r = collect(CollectConfig(env=env_cfg, teleop=True, episodes=1, out=str(tmp / "teleop.zarr"), progress=False))
    finally:
        done.set()
        th.join()
    assert r["episodes"] == 1
    ds = EpisodeDataset(tmp / "teleop.zarr")
    ep = ds.get_episode(0)
    assert ep["is_intervention"].all()
    np.testing.assert_allclose(ep["action"], np.tile(human, (len(ep["action"]), 1)), atol=1e-6)
    assert ep["state"][-1, 6] > ep["state"][0, 6] + 0.05  # joint 7 followed the human
    assert ds.episode_meta(0)["source"] == "human"


def test_teleop_recording_without_a_human_says_so(robot):
    """No teleop messages: collect teleop=true stops with a one-line error instead of recording a still robot."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.config import ConfigError

    tmp = robot[4]
    env_cfg = {"_target_": "hw_drivers.ros2_env.Ros2RobotEnv", "params": str(tmp / "panda_cam.yaml"),
               "overrides": {"dds.domain_id": DOMAIN}}
    with pytest.raises(ConfigError, match="no teleop input"):
        collect(CollectConfig(env=env_cfg, teleop=True, teleop_wait_s=1.0, episodes=1,
                              out=str(tmp / "silent.zarr"), progress=False))


def test_human_intervention_overrides_the_policy(robot):
    env, helper = robot[0], robot[2]
    pub = helper.node.create_publisher(Float64MultiArray, "/teleop/action", RELIABLE_QOS)
    human = np.array([0, 0, 0, 0, 0, 0, -1.0, 1.0], np.float32)
    done = threading.Event()

    def teleop():
        while not done.is_set():
            pub.publish(Float64MultiArray(data=[float(x) for x in human]))
            time.sleep(0.02)

    obs, _ = env.reset(seed=4)
    q0 = obs["state"][:7].copy()
    th = threading.Thread(target=teleop, daemon=True)
    th.start()
    try:
        time.sleep(0.3)
        for _ in range(5):
            obs, _, _, _, info = env.step(np.ones(8, np.float32))  # policy says +1 everywhere
            assert info["is_intervention"]
            np.testing.assert_allclose(info["intervention_action"], human)
    finally:
        done.set()
        th.join()
    assert obs["state"][6] < q0[6] - 0.05  # joint 7 followed the human (-1), not the policy (+1)
    np.testing.assert_allclose(obs["state"][:6], q0[:6], atol=0.03)
    time.sleep(0.4)  # teleop messages are older than intervention.timeout_s now
    _, _, _, _, info = env.step(np.zeros(8, np.float32))
    assert not info["is_intervention"]


def test_human_label_ends_the_episode(robot):
    env, helper = robot[0], robot[2]
    pub = helper.node.create_publisher(Bool, "/human/label", RELIABLE_QOS)
    for label in (False, True):
        env.reset(seed=5)
        _, r, term, _, info = env.step(np.zeros(8, np.float32))
        assert not term
        pub.publish(Bool(data=label))
        time.sleep(0.1)
        _, r, term, trunc, info = env.step(np.zeros(8, np.float32))
        assert term and not trunc and info["human_label"] is label and info["success"] is label
        assert r == float(label)


def test_label_reward_pays_only_for_the_humans_verdict(robot):
    """reward=label: reward 0 until a label arrives, then 1 (True) or 0 (False) and the episode ends."""
    from robotlearn.rewards.sources import INFO_REWARD_SOURCE, with_reward

    env, helper = robot[0], robot[2]
    labelled = with_reward(env, "label")
    assert labelled.reward_source == "label" and labelled.accepts_labels
    pub = helper.node.create_publisher(Bool, "/human/label", RELIABLE_QOS)
    for label in (True, False):
        labelled.reset(seed=7)
        _, r, term, _, info = labelled.step(np.zeros(8, np.float32))
        assert (r, term, info["success"], info[INFO_REWARD_SOURCE]) == (0.0, False, False, "label")
        pub.publish(Bool(data=label))
        time.sleep(0.1)
        _, r, term, _, info = labelled.step(np.zeros(8, np.float32))
        assert term and r == float(label) and info["success"] is label


def test_keyboard_node_labels_episodes(robot):
    import subprocess
    import sys

    from hw_drivers.processes import REPO as ROOT, node_env

    env, tmp = robot[0], robot[4]
    kb = subprocess.Popen([sys.executable, "-m", "hw_drivers.keyboard_label_node", "--params",
                           str(tmp / "panda_cam.yaml"), "--domain-id", str(DOMAIN)], cwd=ROOT, env=node_env(DOMAIN),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert kb.stdout.readline().startswith("s=success")  # printed once the env's subscription matched
        env.reset(seed=8)
        kb.stdin.write("s\n")
        kb.stdin.flush()
        assert kb.stdout.readline().strip() == "label = True"
        time.sleep(0.2)
        _, r, term, _, info = env.step(np.zeros(8, np.float32))
        assert term and info["human_label"] is True and r == 1.0
        kb.stdin.write("q\n")
        kb.stdin.flush()
        assert kb.wait(10) == 0
    finally:
        if kb.poll() is None:
            kb.kill()


def test_silenced_camera_raises_a_clear_stale_error(robot):
    env, helper = robot[0], robot[2]
    env.reset(seed=6)
    cli = helper.node.create_client(SetBool, "/mujoco_robot/camera_enable")
    assert cli.wait_for_service(timeout_sec=5)
    fut = cli.call_async(SetBool.Request(data=False))
    wait_until(fut.done, 5, "camera_enable response")
    try:
        env.step(np.zeros(8, np.float32))
        time.sleep(1.5)  # camera_s is 1.0 s; the joint states keep flowing
        with pytest.raises(StaleObservationError, match=f"{CAM_TOPIC}: last message is .*s old"):
            env.step(np.zeros(8, np.float32))
        # a rogue frame of the wrong size is an error naming the topic, not an observation
        pub = helper.node.create_publisher(Image, CAM_TOPIC, 10)
        wait_until(lambda: pub.get_subscription_count() > 0, 5, "camera subscriber")
        pub.publish(Image(height=16, width=16, encoding="rgb8", step=48, data=bytes(16 * 16 * 3)))
        time.sleep(0.2)
        with pytest.raises(BadMessageError, match=f"{CAM_TOPIC}: image is 16x16, expected 32x32"):
            env.step(np.zeros(8, np.float32))
    finally:
        fut = cli.call_async(SetBool.Request(data=True))
        wait_until(fut.done, 5, "camera_enable response")
    env.reset(seed=6)  # the camera is back: usable again


def test_joint_reach_base_drives_the_tcp_to_the_target(robot):
    from hw_drivers.bases import JointReachBase

    env = robot[0]
    base = JointReachBase.for_env(env, gain=1.0)
    obs, _ = env.reset(seed=7)
    d0 = np.linalg.norm(obs["state"][-3:])  # |target - TCP|
    for _ in range(env.horizon):
        obs, _, term, trunc, info = env.step(base.act(obs)[0])
        if term or trunc:
            break
    d1 = np.linalg.norm(obs["state"][-3:])
    # 20 steps at 50 Hz under the velocity limit cover only part of a far target: it must close in, fast
    assert info["success"] or d1 < min(d0 - 0.04, 0.8 * d0), (d0, d1)


@pytest.mark.parametrize("msg_type,mode", [("joint_trajectory", "position"), ("float64_multi_array", "velocity")])
def test_other_controller_interfaces(tmp_path, msg_type, mode):
    """JointTrajectory (joint_trajectory_controller) and velocity commands (forward velocity controller)."""
    domain = DOMAIN + 20 + (mode == "velocity")
    params = yaml.safe_load((REPO / "configs/ros2/panda_sim.yaml").read_text())
    params["robot"]["command"] = {"topic": "/arm_controller/commands", "msg_type": msg_type, "mode": mode}
    params["robot"]["control_hz"] = 50.0
    params["robot"]["staleness"]["state_s"] = 1.0
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(params))
    proc = start("mujoco_robot_node", ["--params", str(path), "--domain-id", str(domain)], domain, tmp_path / "node.log")
    env, watcher = None, Watcher(domain)
    try:
        wait_until(lambda: watcher.last("status"), 60, "robot node status", (proc,))  # up and spinning, as the fixture
        env = Ros2RobotEnv(str(path), overrides={"dds.domain_id": domain})
        obs, _ = env.reset(seed=0)
        q0 = obs["state"][:7].copy()
        a = np.zeros(8, np.float32)
        a[3] = 1.0
        for _ in range(10):
            obs, *_ = env.step(a)
        moved = obs["state"][3] - q0[3]
        assert 0.05 < moved <= 10 * 1.0 / 50 + 0.02, moved
        np.testing.assert_allclose(obs["state"][[0, 1, 2, 4, 5, 6]], q0[[0, 1, 2, 4, 5, 6]], atol=0.05)
    finally:
        if env is not None:
            env.close()
        watcher.close()
        stop(proc)


def test_custom_robot_dataset_trains_and_evaluates_without_its_params_file(robot, tmp_path):
    """A robot params file outside configs/ (env=ros2/custom env.params=<path>): the dataset records the
    params' content, so train-bc and eval rebuild the env after the file is gone."""
    import shutil

    from robotlearn.cli import eval as eval_cli
    from robotlearn.cli import train_bc
    from robotlearn.data import EpisodeWriter
    from robotlearn.envs import describe_env

    src = tmp_path / "my_arm.yaml"
    shutil.copy(robot[4] / "panda_cam.yaml", src)
    desc = describe_env("ros2/custom", params=str(src), overrides={"dds.domain_id": DOMAIN})
    assert desc.env_info.name == "ros2/my_arm" and desc.env_info.config["params"]["robot"]["control_hz"] == 50.0
    rng = np.random.default_rng(0)
    with EpisodeWriter(tmp_path / "arm.zarr", env_info=desc.env_info, obs_space=desc.observation_space) as w:
        for _ in range(2):
            w.add_episode({"state": rng.normal(size=(20, desc.observation_space["state"].shape[0])).astype(np.float32),
                           "images/front": rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8),
                           "action": rng.uniform(-0.1, 0.1, (20, 8)).astype(np.float32)}, success=False)
    src.unlink()
    out = tmp_path / "bc"
    assert train_bc.main([f"dataset={tmp_path / 'arm.zarr'}", "steps=3", "batch_size=4", "eval_every=0",
                          "final_eval_episodes=1", f"out_dir={out}", "progress=off", "policy.n_obs=1",
                          "policy.encoder.image_channels=8"]) == 0
    assert eval_cli.main([f"policy={out}/checkpoints/last", "episodes=1", "progress=off", f"out={tmp_path / 'ev'}"]) == 0


def test_nested_override_keeps_the_sections_other_keys():
    """The finding: overrides={'dds': {'domain_id': 7}} silently reset localhost_only."""
    from hw_drivers.config import load_params

    base = load_params(REPO / "configs/ros2/panda_real.yaml")
    p = load_params(REPO / "configs/ros2/panda_real.yaml", {"dds": {"domain_id": 7}})
    assert p.dds.domain_id == 7 and p.dds.localhost_only == base.dds.localhost_only is False
    p = load_params(REPO / "configs/ros2/panda_real.yaml", {"robot": {"limits": {"workspace": {"low": [0.3, -0.3, 0.05]}}}})
    assert p.robot.limits.workspace.low == [0.3, -0.3, 0.05]
    assert p.robot.limits.workspace.high == base.robot.limits.workspace.high and p.robot.joint_names == base.robot.joint_names
