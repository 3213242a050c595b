"""Residual RL from cameras over ROS 2 (`rl.encoder=base`): the MuJoCo robot node serves sim/lift with a front and
a wrist camera and no task-state topic, the actor node drives `Ros2RobotEnv` with an image BC base trained in sim,
and the learner node trains on the base's frozen image features, each in its own process over real DDS."""
import os
from pathlib import Path

import numpy as np
import torch
import yaml

from hw_drivers.processes import Watcher, start, stop, stop_all, wait_until
from robotlearn.data import EpisodeDataset
from robotlearn.policies.checkpoint import load_policy
from robotlearn.rl.features import FEATURES_KEY, FrozenImageEncoder

REPO = Path(__file__).resolve().parents[1]
DOMAIN = 220 + os.getpid() % 10


def image_base(tmp: Path) -> str:
    """A small image + proprio BC checkpoint trained in sim on sim/lift_proprio (front + wrist, 64x64)."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.train_bc import TrainBCConfig, run
    from robotlearn.envs.registry import env_config
    from robotlearn.policies.config import BCConfig, EncoderConfig, PolicyConfig

    demos = tmp / "lift.zarr"
    collect(CollectConfig(env=env_config("sim/lift_proprio"), episodes=2, noise=0.1, out=str(demos), progress=False))
    pol = PolicyConfig(kind="bc", horizon=4, n_action_steps=1, obs_keys=["state", "images/front", "images/wrist"],
                       encoder=EncoderConfig(state_hidden=[32], state_features=32, image_channels=8, image_keypoints=8),
                       bc=BCConfig(hidden=[32]))
    res = run(TrainBCConfig(dataset=str(demos), policy=pol, steps=3, out_dir=str(tmp / "bc"), batch_size=8,
                            eval_every=0, final_eval_episodes=0, progress=False))
    return str(res.out_dir / "checkpoints" / "last")


def test_camera_finetune_over_ros2_trains_on_the_base_features(tmp_path):
    torch.set_num_threads(1)
    ckpt = image_base(tmp_path)
    robot_path = tmp_path / "robot.yaml"
    robot_path.write_text(yaml.safe_dump({
        "extends": str(REPO / "configs/ros2/panda_sim_lift.yaml"),
        "robot": {"staleness": {"state_s": 1.0, "camera_s": 1.0}, "watchdog_timeout_s": 1.0,
                  "max_command_age_s": 1.0},  # shared CI cores: tolerate scheduling stalls
        "env": {"horizon": 25},
        "dds": {"domain_id": DOMAIN}}))
    run_dir = tmp_path / "run"
    common = ["--params", str(REPO / "configs/ros2/finetune_panda_sim_lift.yaml"), "--set", f"env.params={robot_path}",
              "--set", f"base={ckpt}", "--set", "rl.encoder=base"]
    learner_args = common + ["--set", f"learner.out_dir={run_dir}", "--set", "learner.min_online_steps=50",
                             "--set", "learner.publish_every=10", "--set", "rl.critic_warmup_updates=10",
                             "--set", "rl.warmup_env_steps=50", "--set", "rl.batch_size=32", "--set", "rl.hidden_dim=32"]
    logs = {k: tmp_path / f"{k}.log" for k in ("robot", "learner", "actor")}
    procs, watcher = {}, Watcher(DOMAIN)
    try:
        procs["robot"] = start("mujoco_robot_node", ["--params", str(robot_path)], DOMAIN, logs["robot"])
        procs["learner"] = start("learner_node", learner_args, DOMAIN, logs["learner"])
        procs["actor"] = start("actor_node", common + ["--set", "rl.batch_size=32", "--set", "rl.hidden_dim=32"],
                               DOMAIN, logs["actor"])
        alive = tuple(procs.values())
        beat = lambda: watcher.last("actor") or {}  # noqa: E731
        v0 = wait_until(lambda: beat().get("version", -1) >= 1 and beat()["version"], 180, "actor to receive weights",
                        alive)
        wait_until(lambda: beat().get("version", -1) >= v0 + 2, 120, "actor version to increase", alive)
        assert stop(procs["actor"], timeout=30) == 0
        assert stop(procs["learner"], timeout=30) == 0
    finally:
        watcher.close()
        stop_all(procs, logs)
    # the episodes came over ROS 2 with both cameras' frames and the features the actor computed from them
    log = EpisodeDataset(run_dir / "online.zarr")
    assert {"images/front", "images/wrist", FEATURES_KEY, "state", "base_action"} <= set(log.keys)
    assert log.attrs["env"]["name"].startswith("ros2/")
    enc = FrozenImageEncoder(load_policy(ckpt, device="cpu"), ckpt)
    assert enc.image_keys == ["images/front", "images/wrist"]
    ep = log.get_episode(log.n_episodes - 1)
    assert ep["images/front"].shape[1:] == ep["images/wrist"].shape[1:] == (64, 64, 3)
    frames = {k: ep[k] for k in enc.image_keys}
    np.testing.assert_allclose(ep[FEATURES_KEY], enc.batch(frames), atol=1e-5)  # the learner's input = the encoder's
    assert np.ptp(ep[FEATURES_KEY], axis=0).max() > 1e-4  # features that follow the scene, not a constant
    versions = log.meta_array("policy_version")
    assert versions[-1] > versions[0]
    meta = yaml.safe_load((run_dir / "checkpoint" / "learner.yaml").read_text())
    assert meta["state_dim"] == 18 + enc.dim  # the residual reads [proprio state, both cameras' features]
