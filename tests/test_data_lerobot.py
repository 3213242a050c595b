"""LeRobot import (v3.0, v2.1) and export (v3.0) on tiny datasets written here with pyarrow + PyAV.

The fixtures are written by this file's own code, not by the exporter, so the importer is checked
against the layout as LeRobot writes it. Frames are flat colours whose red channel encodes the
frame index, so a frame decoded at the wrong timestamp is caught.
"""
import io
import json
from fractions import Fraction

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr

from robotlearn.cli.main import main as cli
from robotlearn.data import EpisodeDataset
from robotlearn.data.importers import import_lerobot

FPS = 10
LENGTHS = (5, 7, 6)
H = W = 32


def frame(ep: int, t: int, cam: int = 0) -> np.ndarray:
    f = np.empty((H, W, 3), np.uint8)
    f[..., 0], f[..., 1], f[..., 2] = 20 + 12 * t, 40 + 60 * ep, 60 + 100 * cam
    return f


def lowdim(ep: int, T: int) -> dict[str, np.ndarray]:
    t = np.arange(T, dtype=np.float32)
    return {"state": np.stack([t, t * 0.5 + ep, -t], 1).astype(np.float32),
            "action": np.stack([np.sin(t + ep), np.cos(t)], 1).astype(np.float32),
            "reward": (t == T - 1).astype(np.float32) * (ep != 1)}


def write_mp4(path, frames: list[np.ndarray], codec: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = Fraction(1, FPS)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


def features(cams: dict[str, str]) -> dict:
    f = {"observation.state": {"dtype": "float32", "shape": [3], "names": ["a", "b", "c"]},
         "action": {"dtype": "float32", "shape": [2], "names": None},
         "next.reward": {"dtype": "float32", "shape": [1], "names": None},
         "next.done": {"dtype": "bool", "shape": [1], "names": None}}
    for cam, codec in cams.items():
        f[f"observation.images.{cam}"] = {"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"],
                                          "info": {"video.codec": codec, "video.fps": FPS, "video.pix_fmt": "yuv420p"}}
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        f[k] = {"dtype": "float32" if k == "timestamp" else "int64", "shape": [1], "names": None}
    return f


def rows(ep: int, T: int, start: int) -> dict:
    d = lowdim(ep, T)
    done = np.zeros(T, bool)
    done[-1] = ep != 1
    return {"observation.state": pa.FixedSizeListArray.from_arrays(pa.array(d["state"].reshape(-1)), 3),
            "action": pa.array(list(d["action"])),  # a variable-length list column, as older writers make
            "next.reward": pa.array(d["reward"]), "next.done": pa.array(done),
            "timestamp": pa.array(np.arange(T, dtype=np.float32) / FPS), "frame_index": pa.array(np.arange(T)),
            "episode_index": pa.array(np.full(T, ep)), "index": pa.array(np.arange(start, start + T)),
            "task_index": pa.array(np.full(T, ep % 2))}


TASKS = ["push the block", "lift the cube"]
V3_CAMS = {"front": "libsvtav1", "wrist": "libx264"}  # LeRobot's default AV1 and the common H.264


def write_v3(root) -> None:
    """Episodes 0..2 in one data file; each camera one mp4 with the episodes back to back."""
    (root / "meta").mkdir(parents=True)
    info = {"codebase_version": "v3.0", "robot_type": "toy", "fps": FPS, "chunks_size": 1000,
            "total_episodes": len(LENGTHS), "total_frames": sum(LENGTHS), "features": features(V3_CAMS),
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"}
    (root / "meta/info.json").write_text(json.dumps(info))
    tables, episodes, start = [], [], 0
    for ep, T in enumerate(LENGTHS):
        tables.append(pa.table(rows(ep, T, start)))
        e = {"episode_index": ep, "tasks": [TASKS[ep % 2]], "length": T, "data/chunk_index": 0, "data/file_index": 0,
             "dataset_from_index": start, "dataset_to_index": start + T}
        for cam in V3_CAMS:
            p = f"videos/observation.images.{cam}/"
            e.update({p + "chunk_index": 0, p + "file_index": 0, p + "from_timestamp": start / FPS,
                      p + "to_timestamp": (start + T) / FPS})
        episodes.append(e)
        start += T
    (root / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), root / "data/chunk-000/file-000.parquet")
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(pa.table({"task_index": [0, 1], "__index_level_0__": TASKS}), root / "meta/tasks.parquet")
    for c, (cam, codec) in enumerate(V3_CAMS.items()):
        frames = [frame(ep, t, c) for ep, T in enumerate(LENGTHS) for t in range(T)]
        write_mp4(root / f"videos/observation.images.{cam}/chunk-000/file-000.mp4", frames, codec)


def png(f: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(f).save(buf, format="PNG")
    return buf.getvalue()


def write_v21(root) -> None:
    """One parquet and one H.264 mp4 per episode, episodes.jsonl and tasks.jsonl; camera `top` is
    stored as PNG images in the parquet (feature dtype 'image')."""
    (root / "meta").mkdir(parents=True)
    feats = features({"front": "h264"})
    feats["observation.images.top"] = {"dtype": "image", "shape": [H, W, 3], "names": ["height", "width", "channel"]}
    info = {"codebase_version": "v2.1", "fps": FPS, "chunks_size": 1000, "features": feats,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"}
    (root / "meta/info.json").write_text(json.dumps(info))
    start = 0
    for ep, T in enumerate(LENGTHS):
        (root / "data/chunk-000").mkdir(parents=True, exist_ok=True)
        cols = rows(ep, T, start)
        cols["observation.images.top"] = pa.array([{"bytes": png(frame(ep, t, 1)), "path": None} for t in range(T)])
        pq.write_table(pa.table(cols), root / f"data/chunk-000/episode_{ep:06d}.parquet")
        write_mp4(root / f"videos/chunk-000/observation.images.front/episode_{ep:06d}.mp4",
                  [frame(ep, t) for t in range(T)], "libx264")
        start += T
    (root / "meta/episodes.jsonl").write_text("\n".join(
        json.dumps({"episode_index": ep, "tasks": [TASKS[ep % 2]], "length": T}) for ep, T in enumerate(LENGTHS)))
    (root / "meta/tasks.jsonl").write_text("\n".join(json.dumps({"task_index": i, "task": t}) for i, t in enumerate(TASKS)))


def check_imported(path, cams) -> None:
    ds = EpisodeDataset(path)
    assert ds.n_episodes == len(LENGTHS) and ds.control_hz == FPS
    assert ds.keys == sorted(["action", "is_intervention", "reward", "state", *[f"images/{c}" for c in cams]])
    assert [ds.episode_meta(i)["length"] for i in range(3)] == list(LENGTHS)
    for ep, T in enumerate(LENGTHS):
        got, want, meta = ds.get_episode(ep), lowdim(ep, T), ds.episode_meta(ep)
        for k in ("state", "action", "reward"):
            np.testing.assert_array_equal(got[k], want[k])
        assert meta["task"] == TASKS[ep % 2] and meta["terminated"] == (ep != 1) and meta["success"] == (ep != 1)
        for c, cam in enumerate(cams):
            frames = got[f"images/{cam}"].astype(int)
            assert frames.shape == (T, H, W, 3)
            want_f = np.stack([frame(ep, t, c) for t in range(T)]).astype(int)
            assert np.abs(frames - want_f).max() <= 4, f"{cam} episode {ep}: frames off by {np.abs(frames - want_f).max()}"


def test_import_lerobot_v3_av1_and_h264(tmp_path, capsys):
    src, out = tmp_path / "lerobot_v3", tmp_path / "v3.zarr"
    write_v3(src)
    assert cli(["dataset", "import-lerobot", f"src={src}", f"out={out}", "progress=false"]) == 0
    assert "3 episodes imported" in capsys.readouterr().out
    check_imported(out, list(V3_CAMS))
    assert EpisodeDataset(out).attrs["import"]["codebase_version"] == "v3.0"


def test_import_lerobot_v21_h264(tmp_path):
    src, out = tmp_path / "lerobot_v21", tmp_path / "v21.zarr"
    write_v21(src)
    assert import_lerobot(src, out, progress=False) == 3
    check_imported(out, ["front", "top"])
    np.testing.assert_array_equal(EpisodeDataset(out).get_episode(2)["images/top"][4], frame(2, 4, 1))  # PNG: exact


def test_import_resumes_after_a_crash(tmp_path):
    src, out = tmp_path / "lerobot_v21", tmp_path / "v21.zarr"
    write_v21(src)
    import_lerobot(src, out, progress=False)
    # the state a kill -9 leaves after committing episode 0 while episode 1 was being written:
    # data arrays hold more rows than meta/episode_ends, which has one entry
    zarr.open_array(str(out / "meta/episode_ends"), mode="r+").resize((1,))
    assert EpisodeDataset(out).n_episodes == 1 and EpisodeDataset(out).partial_steps == sum(LENGTHS) - LENGTHS[0]
    assert import_lerobot(src, out, progress=False) == 3  # the same command again: resumes, does not restart
    check_imported(out, ["front", "top"])
    with pytest.raises(Exception, match="not an import of"):
        import_lerobot(src, out, key_map={"action": "act"}, progress=False)


def test_import_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "lerobot_v21"
    write_v21(src)
    info = json.loads((src / "meta/info.json").read_text())
    (src / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v1.6"}))
    with pytest.raises(SystemExit):
        cli(["dataset", "import-lerobot", f"src={src}", f"out={tmp_path / 'x.zarr'}", "progress=false"])
    err = capsys.readouterr().err
    assert "codebase_version 'v1.6' is not supported" in err and "Traceback" not in err
    (src / "meta/info.json").write_text(json.dumps(info))
    (src / "videos/chunk-000/observation.images.front/episode_000001.mp4").unlink()
    with pytest.raises(SystemExit):
        cli(["dataset", "import-lerobot", f"src={src}", f"out={tmp_path / 'y.zarr'}", "progress=false"])
    assert "episode 1 observation.images.front: video file" in capsys.readouterr().err
    assert EpisodeDataset(tmp_path / "y.zarr").n_episodes == 1  # what was imported before the error is kept


@pytest.fixture(scope="module")
def lift_cams(tmp_path_factory):
    """Two scripted sim/lift episodes with two 64x64 cameras (real rendered frames)."""
    out = tmp_path_factory.mktemp("lift") / "lift.zarr"
    assert cli(["collect", "env=sim/lift", "episodes=2", "env.cameras=[front,panda/wrist]", "env.image_size=64",
                "env.horizon=30", "noise=0.1", f"out={out}", "progress=false"]) == 0
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def test_export_lerobot_round_trip(lift_cams, tmp_path, capsys):
    lr, back = tmp_path / "lerobot", tmp_path / "back.zarr"
    # tiny file limits: every episode starts a new data file and new mp4s, as a large export would
    assert cli(["dataset", "export-lerobot", f"src={lift_cams}", f"out={lr}", "progress=false",
                "export.data_file_mb=0.000001", "export.video_file_mb=0.000001"]) == 0
    assert "LeRobot v3.0, 2 episodes" in capsys.readouterr().out
    info = json.loads((lr / "meta/info.json").read_text())
    src = EpisodeDataset(lift_cams)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_frames"] == src.n_steps
    cam = info["features"]["observation.images.panda.wrist"]
    assert cam["dtype"] == "video" and cam["shape"] == [64, 64, 3] and cam["info"]["video.codec"] == "h264"
    assert info["features"]["observation.state"]["names"] == list(src.env_info.state_names)
    data = pq.read_table(lr / "data/chunk-000/file-001.parquet")  # episode 1, read as any parquet reader would
    assert data.column("episode_index").to_pylist() == [1] * (src.n_steps - int(src.episode_ends[0]))
    with av.open(str(lr / "videos/observation.images.front/chunk-000/file-001.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.video[0].frames == len(data)
    stats = json.loads((lr / "meta/stats.json").read_text())
    np.testing.assert_allclose(stats["observation.state"]["mean"], src.load(["state"])["state"].mean(0), rtol=1e-5, atol=1e-6)
    assert np.shape(stats["observation.images.front"]["mean"]) == (3, 1, 1)
    tasks = pq.read_table(lr / "meta/tasks.parquet")
    assert tasks.column("task").to_pylist() == ["sim/lift"] and b"pandas" in tasks.schema.metadata

    assert import_lerobot(lr, back, progress=False) == 2
    got = EpisodeDataset(back)
    assert got.keys == src.keys and got.control_hz == src.control_hz and got.env_info == src.env_info
    np.testing.assert_array_equal(got.episode_ends, src.episode_ends)
    for k in src.keys:
        a, b = src.load([k])[k], got.load([k])[k]
        assert a.dtype == b.dtype and a.shape == b.shape, k
        if k.startswith("images/"):
            assert psnr(a, b) >= 35.0, (k, psnr(a, b))
        else:
            np.testing.assert_array_equal(a, b, err_msg=k)
    for i in range(2):
        m0, m1 = src.episode_meta(i), got.episode_meta(i)
        for f in ("success", "terminated", "source", "seed", "length", "start_time"):
            assert m0[f] == m1[f], (f, m0[f], m1[f])


def write_diffusion_policy_zarr(path, n_eps=3, T=12) -> None:
    """The layout of diffusion_policy's real-robot ReplayBuffer (zarr v2): data/camera_0, data/robot_eef_pose, ..."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    N = n_eps * T
    rng = np.random.default_rng(0)
    root.create_array("data/camera_0", data=rng.integers(0, 255, (N, 32, 32, 3), dtype=np.uint8), chunks=(4, 32, 32, 3))
    root.create_array("data/robot_eef_pose", data=rng.normal(size=(N, 6)).astype(np.float32))
    root.create_array("data/action", data=rng.normal(size=(N, 6)).astype(np.float32))
    root.create_array("data/timestamp", data=np.arange(N, dtype=np.float64) / 10)
    root.create_array("meta/episode_ends", data=np.arange(1, n_eps + 1, dtype=np.int64) * T)


def test_key_maps_on_a_diffusion_policy_zarr(tmp_path, capsys):
    dp = tmp_path / "real_pusht.zarr"
    write_diffusion_policy_zarr(dp)
    assert cli(["dataset", "info", f"path={dp}"]) == 0
    text = capsys.readouterr().out
    assert "camera_0              unused" in text
    assert "warning: data/camera_0 (32, 32, 3) uint8 looks like a camera but no policy reads it" in text
    keys = "keys={camera_0: images/front, robot_eef_pose: state}"
    assert cli(["dataset", "validate", f"path={dp}", keys]) == 0
    out = capsys.readouterr().out
    assert "images/front camera" in out and "state state" in out and "timestamp unused" in out and "looks like a camera" not in out
    assert cli(["dataset", "info", f"path={dp}", keys]) == 0
    assert "images/front <- camera_0" in capsys.readouterr().out
    lr = tmp_path / "lerobot"  # export reads through the key map too (no control rate stored: fps given)
    assert cli(["dataset", "export-lerobot", f"src={dp}", f"out={lr}", keys, "export.fps=10", "progress=false"]) == 0
    feats = json.loads((lr / "meta/info.json").read_text())["features"]
    assert feats["observation.images.front"]["dtype"] == "video" and feats["observation.state"]["shape"] == [6]
    assert "timestamp" in feats and "robotlearn.timestamp" in feats  # LeRobot's own column, and the dataset's array
    import_lerobot(lr, tmp_path / "back.zarr", progress=False)
    back, src = EpisodeDataset(tmp_path / "back.zarr"), EpisodeDataset(dp, key_map={"camera_0": "images/front", "robot_eef_pose": "state"})
    assert back.keys == ["action", "images/front", "is_intervention", "reward", "state", "timestamp"]
    np.testing.assert_array_equal(back.load(["timestamp"])["timestamp"], src.load(["timestamp"])["timestamp"])
    for bad, why in (("policy.obs_keys=[robot_eef_pose,camera_0]", "policy.obs_keys ['camera_0', 'robot_eef_pose']: a policy reads"),
                     ("keys={camera_9: images/front}", "keys= maps ['camera_9'], which the dataset does not have"),
                     ("keys={camera_0: action}", "which the dataset already has")):
        with pytest.raises(SystemExit):
            cli(["train-bc", f"dataset={dp}", bad, "steps=1", "progress=false", f"out_dir={tmp_path / 'x'}"])
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err and err.count("\n") == 1, err


SMALL = ["steps=3", "batch_size=8", "eval_every=0", "final_eval_episodes=0", "progress=false", "log_every=1",
         "policy.horizon=4", "policy.n_action_steps=2", "policy.bc.hidden=[32]", "policy.encoder.image_channels=8",
         "policy.encoder.image_keypoints=8", "policy.encoder.state_hidden=[16]", "policy.encoder.state_features=16"]


def trained_obs_shapes(run_dir) -> dict:
    return json.loads((run_dir / "checkpoints/last/config.json").read_text())["obs_shapes"]


def test_train_bc_on_an_imported_lerobot_dataset_and_a_mapped_diffusion_policy_zarr(tmp_path, capsys):
    src, lerobot_zarr = tmp_path / "lerobot_v3", tmp_path / "v3.zarr"
    write_v3(src)
    import_lerobot(src, lerobot_zarr, progress=False)
    assert cli(["train-bc", f"dataset={lerobot_zarr}", f"out_dir={tmp_path / 'a'}", *SMALL]) == 0
    assert trained_obs_shapes(tmp_path / "a") == {"images/front": [32, 32, 3], "images/wrist": [32, 32, 3], "state": [3]}

    dp = tmp_path / "dp.zarr"
    write_diffusion_policy_zarr(dp)
    capsys.readouterr()
    assert cli(["train-bc", f"dataset={dp}", "keys={camera_0: images/front, robot_eef_pose: state}",
                f"out_dir={tmp_path / 'b'}", *SMALL]) == 0
    assert "warning" not in capsys.readouterr().out
    assert trained_obs_shapes(tmp_path / "b") == {"images/front": [32, 32, 3], "state": [6]}
    meta = json.loads((tmp_path / "b/checkpoints/last/config.json").read_text())["meta"]
    assert meta["keys"] == {"camera_0": "images/front", "robot_eef_pose": "state"}
    assert cli(["train-bc", f"dataset={dp}", "keys={robot_eef_pose: state}", f"out_dir={tmp_path / 'c'}", *SMALL]) == 0
    assert "warning: data/camera_0 (32, 32, 3) uint8 looks like a camera" in capsys.readouterr().out
