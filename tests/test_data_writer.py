"""Writer/reader round trip, crash safety (real kill -9), resume, concurrent reading, foreign stores."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr

from robotlearn.data import DatasetError, EpisodeDataset, EpisodeWriter
from robotlearn.envs.interface import ActionSpec, EnvInfo, make_observation_space

INFO = EnvInfo("test/task", control_hz=10.0, horizon=50,
               action_spec=ActionSpec("joint_pos", ("a", "b"), (-1.0, -1.0), (1.0, 1.0)), config={"size": 3})

# Deterministic episode content, so a reader can check every committed step it sees.
EPISODE_CODE = textwrap.dedent("""
    import numpy as np
    def episode(e):
        T = 5 + e % 7
        t = np.arange(T)
        return {
            "state": np.stack([np.full(T, e), t], 1).astype(np.float32),
            "images/cam": ((e * 7 + t) % 256).astype(np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8),
            "action": np.stack([t / 10.0, -t / 10.0], 1).astype(np.float32),
        }
""")
exec(EPISODE_CODE)  # defines episode(e)

WRITER_CHILD = EPISODE_CODE + textwrap.dedent("""
    import sys
    from robotlearn.data import EpisodeWriter
    from robotlearn.envs.interface import make_observation_space
    w = EpisodeWriter(sys.argv[1], obs_space=make_observation_space(2, {"cam": (8, 8)}), action_dim=2, flush_every=2,
                      extras={"t_index": ((), "int64")})
    e = w.n_episodes
    print("START", e, flush=True)
    while True:
        ep = episode(e)
        for t in range(len(ep["state"])):
            w.add_step({"state": ep["state"][t], "images/cam": ep["images/cam"][t]}, ep["action"][t], float(t), t_index=t)
        w.end_episode(success=e % 2 == 0, source="scripted", policy_version=e)
        e += 1
""")


def check_committed(ds: EpisodeDataset) -> None:
    for i in range(ds.n_episodes):
        got, want = ds.get_episode(i), episode(i)
        for k, v in want.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"episode {i} key {k}")
        np.testing.assert_array_equal(got["t_index"], np.arange(len(v)))
        m = ds.episode_meta(i)
        assert (m["success"], m["source"], m["policy_version"], m["length"]) == (i % 2 == 0, "scripted", i, len(v))


def test_round_trip_with_images_and_metadata(tmp_path):
    path = tmp_path / "d.zarr"
    space = make_observation_space(2, {"cam": (8, 8)})
    with EpisodeWriter(path, env_info=INFO, obs_space=space, extras={"base_action": ((2,), "float32")}) as w:
        for e in range(3):
            ep = episode(e)
            for t in range(len(ep["state"])):
                w.add_step({"state": ep["state"][t], "images/cam": ep["images/cam"][t]}, ep["action"][t],
                           reward=float(t == len(ep["state"]) - 1), is_intervention=t == 1, base_action=ep["action"][t] * 2)
            assert w.end_episode(success=True, source="human", terminated=e != 1) == e
        w.add_episode({**episode(3), "base_action": episode(3)["action"]}, success=False, source="policy", policy_version=7)
    ds = EpisodeDataset(path)
    assert ds.n_episodes == 4 and ds.n_steps == sum(len(episode(e)["state"]) for e in range(4))
    assert ds.keys == ["action", "base_action", "images/cam", "is_intervention", "reward", "state"]
    for e in range(3):
        got = ds.get_episode(e)
        for k, v in episode(e).items():
            np.testing.assert_array_equal(got[k], v)
        assert got["images/cam"].dtype == np.uint8 and got["state"].dtype == np.float32
        np.testing.assert_array_equal(got["base_action"], episode(e)["action"] * 2)
        assert got["is_intervention"].tolist() == [t == 1 for t in range(len(got["state"]))]
        assert got["reward"][-1] == 1.0 and got["reward"][:-1].sum() == 0
        assert ds.episode_meta(e)["terminated"] == (e != 1)
    m = ds.episode_meta(3)
    assert (m["source"], m["policy_version"], m["success"], m["terminated"]) == ("policy", 7, False, False)
    assert m["start_time"] <= m["end_time"]
    assert ds.env_info == INFO and ds.control_hz == 10.0
    assert ds.schema["images/cam"] == {"shape": [8, 8, 3], "dtype": "uint8"}
    assert ds.partial_steps == 0


def test_kill9_mid_recording_then_concurrent_read_and_resume(tmp_path):
    path = tmp_path / "crash.zarr"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    seen, ds = 0, None
    for attempt, run_for in enumerate([0.8, 0.37]):  # two crashes at different moments, second one resumes
        proc = subprocess.Popen([sys.executable, "-c", WRITER_CHILD, str(path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().split()[0] == b"START"
        start, t_end = seen, time.time() + run_for
        while time.time() < t_end or (seen <= start and time.time() < t_end + 20):
            if path.exists():  # the store appears atomically, complete
                if ds is None:
                    ds = EpisodeDataset(path)
                else:
                    ds.refresh()  # a concurrent reader sees only whole, correct episodes
                check_committed(ds)
                assert ds.n_episodes >= seen
                seen = ds.n_episodes
        assert seen > start, f"attempt {attempt}: the reader never saw a new committed episode"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        ds = EpisodeDataset(path)
        assert ds.n_episodes >= max(seen, 1), f"attempt {attempt}: nothing committed"
        check_committed(ds)
        seen = ds.n_episodes
    partial = ds.partial_episode()
    assert all(len(v) == ds.partial_steps for v in partial.values())
    # resume in this process: the tail is trimmed and numbering continues
    w = EpisodeWriter(path)
    assert w.n_episodes == seen
    ep = episode(seen)
    for t in range(len(ep["state"])):
        w.add_step({"state": ep["state"][t], "images/cam": ep["images/cam"][t]}, ep["action"][t], float(t), t_index=t)
    w.end_episode(success=seen % 2 == 0, source="scripted", policy_version=seen)
    w.close()
    ds = EpisodeDataset(path)
    assert ds.n_episodes == seen + 1 and ds.partial_steps == 0
    check_committed(ds)
    assert not list(path.rglob("*.partial"))


def test_interrupted_commit_is_dropped(tmp_path):
    """episode_ends resized but its value never written (crash between the two writes)."""
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path) as w:
        for e in range(2):
            w.add_episode(episode(e), success=True, source="scripted")
    ends = zarr.open_array(str(path / "meta/episode_ends"), mode="r+")
    ends.resize((3,))
    state = zarr.open_array(str(path / "data/state"), mode="r+")
    state.resize((state.shape[0] + 4, 2))
    ds = EpisodeDataset(path)
    assert ds.n_episodes == 2 and ds.n_steps == len(episode(0)["state"]) + len(episode(1)["state"])
    w = EpisodeWriter(path)
    assert w.recovered["interrupted_commit"] and w.n_episodes == 2
    w.close()
    assert zarr.open_array(str(path / "meta/episode_ends"), mode="r").shape == (2,)


def test_bad_steps_raise_naming_key_and_step_and_keep_committed(tmp_path):
    path = tmp_path / "d.zarr"
    w = EpisodeWriter(path, obs_space=make_observation_space(2, {"cam": (8, 8)}), action_dim=2)
    w.add_episode(episode(0), success=True, source="scripted")
    good = {"state": np.zeros(2, np.float32), "images/cam": np.zeros((8, 8, 3), np.uint8)}
    w.add_step(good, np.zeros(2), 0.0)
    with pytest.raises(DatasetError, match=r"episode 1 step 1: missing key 'images/cam'"):
        w.add_step({"state": good["state"]}, np.zeros(2), 0.0)
    with pytest.raises(DatasetError, match=r"step 1: key 'state' has shape \(3,\), schema says \(2,\)"):
        w.add_step({**good, "state": np.zeros(3)}, np.zeros(2), 0.0)
    with pytest.raises(DatasetError, match=r"key 'images/cam' has dtype float32"):
        w.add_step({**good, "images/cam": np.zeros((8, 8, 3), np.float32)}, np.zeros(2), 0.0)
    with pytest.raises(DatasetError, match=r"key 'action' has non-finite"):
        w.add_step(good, np.array([0.0, np.nan]), 0.0)
    with pytest.raises(DatasetError, match=r"keys \['oops'\] are not in the dataset schema"):
        w.add_step(good, np.zeros(2), 0.0, oops=1.0)
    assert w.episode_steps == 1  # rejected steps were not recorded
    w.discard_episode()
    with pytest.raises(DatasetError, match="no recorded steps"):
        w.end_episode(success=True)
    w.close()
    ds = EpisodeDataset(path)
    assert ds.n_episodes == 1 and ds.partial_steps == 0
    np.testing.assert_array_equal(ds.get_episode(0)["state"], episode(0)["state"])
    with pytest.raises(DatasetError, match="schema differs"):
        EpisodeWriter(path, obs_space=make_observation_space(3), action_dim=2)


def test_second_writer_is_refused(tmp_path):
    w = EpisodeWriter(tmp_path / "d.zarr")
    w.add_episode(episode(0))
    with pytest.raises(DatasetError, match="another EpisodeWriter"):
        EpisodeWriter(tmp_path / "d.zarr")
    w.close()
    EpisodeWriter(tmp_path / "d.zarr").close()


def test_not_a_dataset_and_inconsistent_ends(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        EpisodeDataset(tmp_path / "missing.zarr")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(DatasetError, match="found a file"):
        EpisodeDataset(tmp_path / "file.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a zarr dataset"):
        EpisodeDataset(tmp_path / "empty")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w").create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(DatasetError, match="no meta/episode_ends"):
        EpisodeDataset(tmp_path / "plain.zarr")
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path) as w:
        w.add_episode(episode(0))
        w.add_episode(episode(1))
    zarr.open_array(str(path / "meta/episode_ends"), mode="r+")[1] = 100
    with pytest.raises(DatasetError, match=r"data/action has 11 steps but meta/episode_ends ends at 100: episode 1"):
        EpisodeDataset(path)
    with pytest.raises(DatasetError, match="refusing to append"):
        EpisodeWriter(path)


def test_opens_diffusion_policy_style_zarr_v2_store(tmp_path):
    """A diffusion_policy ReplayBuffer (zarr v2, data/<key> + meta/episode_ends, no attrs) opens directly."""
    import numcodecs

    root = zarr.open_group(str(tmp_path / "pusht.zarr"), mode="w", zarr_format=2)
    img = np.arange(7 * 4 * 4 * 3, dtype=np.float32).reshape(7, 4, 4, 3)
    root.create_array("data/img", shape=img.shape, chunks=(2, 4, 4, 3), dtype="f4", compressors=numcodecs.Blosc())[:] = img
    root.create_array("data/action", shape=(7, 2), dtype="f4")[:] = np.arange(14).reshape(7, 2)
    root.create_array("meta/episode_ends", shape=(2,), dtype="i8")[:] = [3, 7]
    ds = EpisodeDataset(tmp_path / "pusht.zarr")
    assert ds.format_version == 2 and ds.n_episodes == 2 and ds.keys == ["action", "img"]
    np.testing.assert_array_equal(ds.get_episode(1)["img"], img[3:7])
    assert ds.episode_meta(0)["length"] == 3 and ds.schema["img"] == {"shape": [4, 4, 3], "dtype": "float32"}
    with pytest.raises(DatasetError, match="not written by robotlearn"):
        EpisodeWriter(tmp_path / "pusht.zarr")
