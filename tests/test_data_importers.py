"""Importers on real small files: an MCAP ROS 2 bag of rclpy-serialised messages, and a robomimic HDF5."""
import json

import h5py
import numpy as np
import pytest
import yaml

from robotlearn.cli.main import main as cli
from robotlearn.data import DatasetError, EpisodeDataset
from robotlearn.data.importers import import_bags, import_robomimic
from robotlearn.data.importers.rosbag import message_definition

MS = 1_000_000
T0 = 1_000_000 * MS  # bag start, ns


def write_bag(path, skip_actions=()):
    """JointState 50 Hz (header stamps, logged 7 ms late, joints in the order j2, j1), Float64MultiArray
    action 20 Hz (no header: log time), bgr8 Image 10 Hz (header stamps)."""
    from mcap.writer import Writer
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray

    def stamp(msg, t):
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)

    msgs = []  # (log_time, topic, msg)
    for i in range(101):
        m = JointState(name=["j2", "j1"], position=[-float(i), float(i)])
        stamp(m, T0 + i * 20 * MS)
        msgs.append((T0 + i * 20 * MS + 7 * MS, "/joint_states", m))
    for i in range(40):
        if i not in skip_actions:
            msgs.append((T0 + 5 * MS + i * 50 * MS, "/action", Float64MultiArray(data=[float(i), 2.0 * i])))
    for i in range(20):
        px = np.zeros((4, 6, 3), np.uint8)
        px[..., 0], px[..., 2] = i, 255 - i  # B, R
        m = Image(height=4, width=6, encoding="bgr8", step=18, data=px.tobytes())
        stamp(m, T0 + 30 * MS + i * 100 * MS)
        msgs.append((T0 + 30 * MS + i * 100 * MS, "/camera/front/image_raw", m))
    types = {"/joint_states": "sensor_msgs/msg/JointState", "/action": "std_msgs/msg/Float64MultiArray",
             "/camera/front/image_raw": "sensor_msgs/msg/Image"}
    with open(path, "wb") as f:
        w = Writer(f)
        w.start(profile="ros2", library="robotlearn-test")
        channels = {}
        for topic, datatype in types.items():
            sid = w.register_schema(name=datatype, encoding="ros2msg", data=message_definition(datatype).encode())
            channels[topic] = w.register_channel(topic=topic, message_encoding="cdr", schema_id=sid)
        for t, topic, m in sorted(msgs, key=lambda x: x[0]):
            w.add_message(channel_id=channels[topic], log_time=t, publish_time=t, data=serialize_message(m))
        w.finish()


MAPPING = {"control_hz": 10, "max_staleness": 0.5, "success": True, "topics": {
    "/joint_states": {"key": "state", "field": "position", "joints": ["j1", "j2"]},
    "/action": {"key": "action"},
    "/camera/front/image_raw": {"key": "images/front"},
}}


def test_mcap_bag_import_sample_and_hold(tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    write_bag(bags / "a.mcap")
    write_bag(bags / "b.mcap")
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    out = tmp_path / "teleop.zarr"
    assert cli(["dataset", "import-bag", f"bag={bags}", f"mapping={tmp_path / 'mapping.yaml'}", f"path={out}"]) == 0
    ds = EpisodeDataset(out)
    assert ds.n_episodes == 2 and ds.control_hz == 10.0
    ep = ds.get_episode(0)
    # ticks every 100 ms from t0+30 ms (first image) to t0+1930 ms (last image, the earliest last message)
    k = np.arange(20)
    assert len(ep["state"]) == 20
    np.testing.assert_allclose(ep["timestamp"] - T0 / 1e9, 0.030 + 0.1 * k, atol=1e-6)
    j = 5 * k + 1  # latest joint state at or before each tick, by header stamp (log time would give 5k)
    np.testing.assert_array_equal(ep["state"], np.stack([j, -j], 1).astype(np.float32))
    np.testing.assert_array_equal(ep["action"], np.stack([2 * k, 4 * k], 1).astype(np.float32))
    assert ep["images/front"].shape == (20, 4, 6, 3) and ep["images/front"].dtype == np.uint8
    np.testing.assert_array_equal(ep["images/front"][:, 0, 0], np.stack([255 - k, 0 * k, k], 1))  # bgr -> rgb
    m = ds.episode_meta(1)
    assert m["success"] and m["source"] == "human" and m["bag_index"] == 1
    assert ds.attrs["import"]["mapping"]["control_hz"] == 10


def test_bag_import_errors_name_the_topic(tmp_path):
    write_bag(tmp_path / "gap.mcap", skip_actions=range(10, 31))  # /action silent for ~1 s
    with pytest.raises(DatasetError, match=r"topic /action is silent for 1\.\d+ s"):
        import_bags([tmp_path / "gap.mcap"], MAPPING, tmp_path / "gap.zarr")
    assert not (tmp_path / "gap.zarr").exists() or EpisodeDataset(tmp_path / "gap.zarr").n_episodes == 0
    bad = {**MAPPING, "topics": {**MAPPING["topics"], "/missing": {"key": "extra"}}}
    with pytest.raises(DatasetError, match=r"mapped topics \['/missing'\] have no messages"):
        import_bags([tmp_path / "gap.mcap"], bad, tmp_path / "m.zarr")
    wrong = {**MAPPING, "topics": {"/joint_states": {"key": "state", "joints": ["j1", "j9"]}}}
    with pytest.raises(DatasetError, match=r"/joint_states: JointState lacks joints \['j9'\]"):
        import_bags([tmp_path / "gap.mcap"], wrong, tmp_path / "w.zarr")


def write_robomimic(path):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
        for name, T in [("demo_0", 4), ("demo_10", 3), ("demo_2", 5)]:  # numeric order: 0, 2, 10
            g = data.create_group(name)
            g.create_dataset("actions", data=rng.uniform(-1, 1, (T, 7)))
            rewards = np.zeros(T)
            rewards[-1] = name != "demo_2"
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=rewards.astype(int))
            g.create_dataset("obs/robot0_eef_pos", data=np.full((T, 3), int(name[5:]), np.float64))
            g.create_dataset("obs/object", data=np.arange(T * 10).reshape(T, 10))
            g.create_dataset("obs/agentview_image", data=np.full((T, 8, 8, 3), int(name[5:]), np.uint8))
            g.attrs["num_samples"] = T


def test_robomimic_hdf5_import(tmp_path):
    write_robomimic(tmp_path / "lift.hdf5")
    out = tmp_path / "rm.zarr"
    assert cli(["dataset", "import-robomimic", f"hdf5={tmp_path / 'lift.hdf5'}", f"path={out}"]) == 0
    ds = EpisodeDataset(out)
    assert ds.n_episodes == 3 and ds.episode_ends.tolist() == [4, 9, 12] and ds.control_hz == 20.0
    assert ds.attrs["state_layout"] == {"object": [0, 10], "robot0_eef_pos": [10, 13]}
    ep = ds.get_episode(2)  # demo_10
    assert ep["state"].shape == (3, 13) and (ep["state"][:, 10:] == 10).all()
    np.testing.assert_array_equal(ep["state"][:, :10], np.arange(30).reshape(3, 10))
    assert ep["images/agentview"].shape == (3, 8, 8, 3) and (ep["images/agentview"] == 10).all()
    with h5py.File(tmp_path / "lift.hdf5") as f:
        np.testing.assert_allclose(ep["action"], f["data/demo_10/actions"][:], rtol=1e-6)
    assert [ds.episode_meta(i)["success"] for i in range(3)] == [True, False, True]
    assert ds.attrs["import"]["env_args"]["env_name"] == "Lift"
    with pytest.raises(DatasetError, match="exists"):
        import_robomimic(tmp_path / "lift.hdf5", out)
    with h5py.File(tmp_path / "broken.hdf5", "w") as f:
        f.create_dataset("data/demo_0/actions", data=np.zeros((2, 7)))
        f.create_dataset("data/demo_0/obs/object", data=np.zeros((3, 10)))
    with pytest.raises(DatasetError, match=r"data/demo_0: lengths \{'state': 3\} differ from 2 actions"):
        import_robomimic(tmp_path / "broken.hdf5", tmp_path / "b.zarr")


def write_robomimic_images(path, cams=("agentview_image", "robot0_eye_in_hand_image"), T=6):
    """A robomimic image dataset (as robomimic's dataset_states_to_obs writes it): uint8 (T, H, W, 3) per camera."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_group("data").attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
        for d in range(2):
            g = f.create_group(f"data/demo_{d}")
            g.create_dataset("actions", data=rng.uniform(-1, 1, (T, 7)))
            g.create_dataset("rewards", data=np.eye(T)[-1])
            g.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(T, 3)))
            g.create_dataset("obs/robot0_gripper_qpos", data=rng.normal(size=(T, 2)))
            for c, cam in enumerate(cams):
                g.create_dataset(f"obs/{cam}", data=np.full((T, 16, 16, 3), 10 * d + c, np.uint8))
            g.create_dataset("next_obs/robot0_eef_pos", data=rng.normal(size=(T, 3)))  # ignored, as robomimic's own loader does


def test_robomimic_image_dataset_imports_cameras_and_trains(tmp_path):
    write_robomimic_images(tmp_path / "image.hdf5")
    out = tmp_path / "rm.zarr"
    assert import_robomimic(tmp_path / "image.hdf5", out) == 2
    ds = EpisodeDataset(out)
    assert ds.keys == ["action", "images/agentview", "images/robot0_eye_in_hand", "is_intervention", "reward", "state"]
    ep = ds.get_episode(1)
    assert (ep["images/agentview"] == 10).all() and (ep["images/robot0_eye_in_hand"] == 11).all()
    assert ep["state"].shape == (6, 5) and ds.attrs["state_layout"] == {"robot0_eef_pos": [0, 3], "robot0_gripper_qpos": [3, 5]}
    run = tmp_path / "run"
    assert cli(["train-bc", f"dataset={out}", "steps=2", "batch_size=4", "eval_every=0", "final_eval_episodes=0",
                "progress=false", f"out_dir={run}", "policy.horizon=4", "policy.n_action_steps=2", "policy.bc.hidden=[16]",
                "policy.encoder.image_channels=4", "policy.encoder.image_keypoints=4"]) == 0
    shapes = json.loads((run / "checkpoints/last/config.json").read_text())["obs_shapes"]
    assert shapes == {"images/agentview": [16, 16, 3], "images/robot0_eye_in_hand": [16, 16, 3], "state": [5]}
    write_robomimic_images(tmp_path / "libero.hdf5", cams=("agentview_rgb", "eye_in_hand_rgb"))  # LIBERO's names
    import_robomimic(tmp_path / "libero.hdf5", tmp_path / "libero.zarr")
    assert [k for k in EpisodeDataset(tmp_path / "libero.zarr").keys if k.startswith("images/")] == [
        "images/agentview", "images/eye_in_hand"]
