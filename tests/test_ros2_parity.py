"""Sim-to-robot parity over real DDS: the MuJoCo robot node serves sim/lift in its own process the way a
robot driver would (joints, gripper, one camera, end-effector actions, no task-state topic), and
`Ros2RobotEnv` must see and act exactly as the sim task with `obs: proprio` does, so a checkpoint
trained in sim runs there unchanged.
"""
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hw_drivers.processes import Watcher, start, stop, wait_until
from hw_drivers.ros2_env import Ros2RobotEnv
from robotlearn.envs import make_env
from robotlearn.policies.checkpoint import PolicyEnvMismatchError, load_policy

REPO = Path(__file__).resolve().parents[1]
# ROS_DOMAIN_IDs per module: robot 10-29 (+20, +21), transport 60-79, e2e 110-129, parity 140-199 (+20, +30, +40),
# bridge 200-219, cameras RL 220-229
DOMAIN = 140 + os.getpid() % 20
TCP = slice(14, 17)  # tcp_x/y/z in the proprio state (proprio_state_names(7))


@contextmanager
def serve(tmp: Path, task: str, domain: int):
    """The MuJoCo robot node serving `configs/ros2/panda_sim_<task>.yaml` in its own process, and the env on it."""
    path = tmp / f"panda_{task}.yaml"
    path.write_text(yaml.safe_dump({
        "extends": str(REPO / f"configs/ros2/panda_sim_{task}.yaml"),
        "robot": {"staleness": {"state_s": 1.0, "camera_s": 1.0}},  # busy CI cores; the limits are tested elsewhere
        "dds": {"domain_id": domain}}))
    proc = start("mujoco_robot_node", ["--params", str(path)], domain, tmp / f"{task}_node.log")
    watcher, env = Watcher(domain), None
    try:
        wait_until(lambda: watcher.last("status"), 60, "robot node status", (proc,))
        env = Ros2RobotEnv(str(path))
        yield env, tmp
    finally:
        if env is not None:
            env.close()
        watcher.close()
        stop(proc)
        print((tmp / f"{task}_node.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def lift_robot(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("parity"), "lift", DOMAIN) as served:
        yield served


def sim_state_at(sim, q, dq, width) -> np.ndarray:
    """The sim task's `obs: proprio` state with the arm at (q, dq) and the gripper `width` open."""
    d = sim.data
    d.qpos[sim._qadr], d.qvel[sim._dadr] = q, dq
    d.qpos[sim._finger_qadr] = width / 2
    import mujoco

    mujoco.mj_forward(sim.model, d)
    return sim.get_obs()["state"]


def check_state_parity(env, sim_name: str, steps: int = 12) -> None:
    sim = make_env(sim_name)
    so, _ = sim.reset(seed=0)
    assert env.env_info.state_names == sim.env_info.state_names  # declared layouts, name by name
    assert env.env_info.action_spec.kind == sim.env_info.action_spec.kind == "ee_delta_pos+gripper"
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    for step in range(steps):
        s = obs["state"]
        expect = sim_state_at(sim, s[:7], s[7:14], s[17])
        np.testing.assert_allclose(s, expect, atol=1e-4, err_msg=f"step {step}")  # TCP by FK == sim's TCP site
        cams = sorted(k for k in obs if k.startswith("images/"))
        assert cams == sorted(k for k in so if k.startswith("images/")) == ["images/front", "images/wrist"]
        for k in cams:
            assert obs[k].dtype == so[k].dtype == np.uint8 and obs[k].shape == so[k].shape == (64, 64, 3)
        obs, *_ = env.step(rng.uniform(-0.6, 0.6, 4).astype(np.float32))
    sim.close()


def test_ros2_state_is_the_sim_proprio_state_for_the_same_joints(lift_robot):
    check_state_parity(lift_robot[0], "sim/lift_proprio")


def test_another_manipulation_task_is_served_without_node_changes(tmp_path):
    """sim/pick_place over ROS 2 from its YAML alone: the same parity, and its longer episode."""
    with serve(tmp_path, "pick_place", DOMAIN + 20) as (env, _):
        check_state_parity(env, "sim/pick_place_proprio", steps=5)
        assert env.horizon == 150 and env.name == "ros2/panda_pick_place"


def test_peg_insert_is_served_without_node_changes(tmp_path):
    """sim/peg_insert over ROS 2 from its YAML alone: the same parity, its horizon, and its own start posture, which
    the robot-side IK pulls towards as the sim task's IK does (ee_home_q = the task's home_q)."""
    from sim.tasks.peg_insert import PEG_HOME_Q

    with serve(tmp_path, "peg_insert", DOMAIN + 40) as (env, _):
        check_state_parity(env, "sim/peg_insert_proprio", steps=5)
        assert env.horizon == 100 and env.name == "ros2/panda_peg_insert"
        np.testing.assert_allclose(env.p.env.ee_home_q, PEG_HOME_Q)
        o, info = env.reset()
        # reset by the task: its posture, not lift's (>= 0.3 rad away on joints 2 and 6); the first observation after
        # a reset can still be settling by up to ~0.06 rad when the cores are busy
        np.testing.assert_allclose(o["state"][:7], PEG_HOME_Q, atol=0.1)
        assert not info["success"]


def test_peg_pick_insert_is_served_without_node_changes(tmp_path):
    """sim/peg_pick_insert over ROS 2 from its YAML alone (its weld grasp runs inside the task's physics step)."""
    with serve(tmp_path, "peg_pick_insert", DOMAIN + 30) as (env, _):
        check_state_parity(env, "sim/peg_pick_insert_proprio", steps=5)
        assert env.horizon == 150


def test_ee_delta_moves_the_robot_tcp_as_it_moves_the_sim_tcp(lift_robot):
    """20 steps of one commanded TCP step each way: the robot's TCP goes where the sim's goes."""
    env, _ = lift_robot
    sim = make_env("sim/lift_proprio")
    for axis in range(3):
        a = np.array([0, 0, 0, -1], np.float32)
        a[axis] = 0.25  # 5 mm per step, 10 cm commanded in all: away from the joint limits and the table
        o, _ = env.reset()
        so, _ = sim.reset(seed=0)
        p0, s0 = o["state"][TCP].copy(), so["state"][TCP].copy()
        for _ in range(20):
            o, *_ = env.step(a)
            so, *_ = sim.step(a)
        moved, sim_moved = o["state"][TCP] - p0, so["state"][TCP] - s0
        print(f"axis {axis}: robot moved {np.round(moved * 1e3, 1)} mm, sim {np.round(sim_moved * 1e3, 1)} mm")
        off = [i for i in range(3) if i != axis]
        # measured here: the sim TCP covers 68-80 mm of the 100 mm commanded (each step starts from the measured
        # pose, and position control lags), the robot 54-71 mm on a quiet machine and down to 48 mm while the rest
        # of the suite loads the cores (real-time command and state latency on top of the sim's lag); it never
        # goes further than the sim
        assert 0.6 * sim_moved[axis] < moved[axis] < sim_moved[axis] + 0.01, (axis, moved, sim_moved)
        assert np.abs(moved[off]).max() < 0.012, (axis, moved)  # the other axes (and orientation) held
    sim.close()


def test_integrated_ee_steps_move_the_robot_tcp_by_the_commanded_sum(lift_robot):
    """env.ee_integrate on the robot: 20 commanded steps of 5 mm and 5 zero actions move the TCP by 100 mm
    (within 2 mm, the other axes held within 2 mm), as the sim task with ee_integrate does."""
    _, tmp = lift_robot
    env = Ros2RobotEnv(str(tmp / "panda_lift.yaml"), overrides={"env.ee_integrate": True})  # the same node
    try:
        sim = make_env("sim/lift_proprio", ee_integrate=True)
        assert env.env_info.action_spec.kind == sim.env_info.action_spec.kind == "ee_delta_pos_integrated+gripper"
        hold = np.array([0, 0, 0, -1], np.float32)
        for axis in range(3):
            a = hold.copy()
            a[axis] = 0.25
            env.reset()
            for _ in range(5):  # the arm can still be settling from the reset's homing on busy cores
                o, *_ = env.step(hold)
            p0 = o["state"][TCP].copy()
            for _ in range(20):
                o, *_ = env.step(a)
            for _ in range(5):
                o, *_ = env.step(hold)
            moved = o["state"][TCP] - p0
            print(f"axis {axis}: robot moved {np.round(moved * 1e3, 1)} mm of 100 commanded")
            np.testing.assert_allclose(moved, np.eye(3)[axis] * 0.1, atol=0.002, err_msg=f"axis {axis}")
        sim.close()
    finally:
        env.close()


@pytest.fixture(scope="module")
def sim_checkpoint(tmp_path_factory):
    """A small image + proprio BC policy trained on scripted sim/lift_proprio demos, in sim only."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.train_bc import TrainBCConfig, run
    from robotlearn.envs.registry import env_config
    from robotlearn.policies.config import BCConfig, EncoderConfig, PolicyConfig

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("sim_bc")
    demos = tmp / "lift.zarr"
    collect(CollectConfig(env=env_config("sim/lift_proprio"), episodes=2, noise=0.1, out=str(demos), progress=False))
    pol = PolicyConfig(kind="bc", horizon=4, n_action_steps=2, obs_keys=["state", "images/front"],
                       encoder=EncoderConfig(state_hidden=[32], state_features=32, image_channels=8),
                       bc=BCConfig(hidden=[32]))
    res = run(TrainBCConfig(dataset=str(demos), policy=pol, steps=3, out_dir=str(tmp / "bc"), batch_size=8,
                            eval_every=0, final_eval_episodes=0, progress=False))
    return res.out_dir / "checkpoints" / "last"


def test_a_sim_checkpoint_drives_a_full_lift_episode_over_ros2(lift_robot, sim_checkpoint):
    from robotlearn.policies.base import ChunkStepper

    env, _ = lift_robot
    policy = load_policy(sim_checkpoint, env=env, device="cpu")  # trained on sim/lift: accepted on evidence
    stepper = ChunkStepper(policy)
    obs, _ = env.reset()
    stepper.reset()
    steps, done = 0, False
    while not done:
        obs, _, term, trunc, info = env.step(stepper.next_action(obs))
        steps, done = steps + 1, term or trunc
    assert steps == env.horizon or info["success"]  # the whole episode, ended by the time limit or success
    assert env.horizon == 100


def test_a_checkpoint_with_another_state_layout_or_action_spec_is_refused(lift_robot, sim_checkpoint, tmp_path):
    env, _ = lift_robot
    bad = tmp_path / "swapped"
    shutil.copytree(sim_checkpoint, bad)
    cfg = json.loads((bad / "config.json").read_text())
    names = cfg["env"]["state_names"]
    names[14], names[15] = names[15], names[14]  # tcp_y where tcp_x was
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PolicyEnvMismatchError, match=r"state\[14\] is 'tcp_x' in the env, 'tcp_y' for the policy"):
        load_policy(bad, env=env, device="cpu")
    cfg["env"]["state_names"] = list(env.env_info.state_names)
    cfg["env"]["action_spec"]["high"][0] = 0.05  # trained with 5 cm steps, the robot takes 2 cm
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PolicyEnvMismatchError, match="action scale differs: high"):
        load_policy(bad, env=env, device="cpu")
    with pytest.warns(UserWarning, match="action scale differs"):
        load_policy(bad, env=env, device="cpu", allow_env_mismatch=True)
    # the same numbers, executed from the last target instead of the measured TCP: another action
    integrated = make_env("sim/lift_proprio", ee_integrate=True)
    with pytest.raises(PolicyEnvMismatchError, match="ee_delta_pos_integrated"):
        load_policy(sim_checkpoint, env=integrated, device="cpu")
    integrated.close()
