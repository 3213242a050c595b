"""`robotlearn collect` on a real MuJoCo task (resumable) and `robotlearn dataset info|validate|view`."""
import numpy as np
import zarr

from robotlearn.cli.main import main as cli
from robotlearn.data import EpisodeDataset
from robotlearn.envs import make_env


def test_collect_resumes_and_records_env(tmp_path, capsys):
    out = tmp_path / "lift.zarr"
    args = ["collect", "env=sim/lift", "noise=0.1", "seed=5", f"out={out}", "progress=false"]
    assert cli(args + ["episodes=2"]) == 0
    assert "success rate" in capsys.readouterr().out
    assert cli(args + ["episodes=3"]) == 0  # resume: appends one more, with a fresh seed
    assert cli(args + ["episodes=3"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    ds = EpisodeDataset(out)
    assert ds.n_episodes == 3 and ds.meta_array("seed").tolist() == [5, 6, 7]
    assert {ds.episode_meta(i)["source"] for i in range(3)} == {"scripted"}
    assert ds.keys == ["action", "is_intervention", "reward", "state"]
    assert np.abs(ds.load(["action"])["action"]).max() <= 1.0
    for i in range(3):  # sparse reward 1.0 exactly at success, which terminates the episode
        m, ep = ds.episode_meta(i), ds.get_episode(i)
        assert ep["reward"].sum() == float(m["success"]) and m["terminated"] == m["success"]
    env = make_env(ds.env_info.name, **ds.env_info.config)  # the dataset recreates its task
    obs, _ = env.reset(seed=5)
    np.testing.assert_allclose(obs["state"], ds.get_episode(0)["state"][0], atol=1e-6)


def test_collect_without_anything_to_drive_the_env_is_a_one_line_error(tmp_path, capsys):
    import pytest

    for args, why in ((["env=sim/reach", "teleop=true"], "has no teleop input"),
                      (["env=sim/reach", "teleop=true", "policy=/no/ckpt"], "teleop=true records a human only"),
                      (["env=gym/Pendulum-v1"], "or teleop=true to record a human")):
        with pytest.raises(SystemExit) as e:
            cli(["collect", *args, f"out={tmp_path / 'x.zarr'}", "progress=false"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and why in err and "Traceback" not in err, err
    assert not (tmp_path / "x.zarr").exists()


def test_dataset_info_validate_view(tmp_path, capsys):
    out = tmp_path / "cam.zarr"
    assert cli(["collect", "env=sim/lift", "episodes=2", "env.cameras=[front]", "env.image_size=32",
                f"out={out}", "progress=false"]) == 0
    assert cli(["dataset", "info", f"path={out}"]) == 0
    text = capsys.readouterr().out
    assert "sim/lift @ 20 Hz" in text and "images/front" in text and "(32, 32, 3)" in text
    assert cli(["dataset", "validate", f"path={out}"]) == 0
    assert ": OK" in capsys.readouterr().out
    assert cli(["dataset", "view", f"path={out}", "episode=1", f"out={tmp_path / 'ep.png'}"]) == 0
    assert (tmp_path / "ep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["dataset", "view", f"path={out}", f"out={tmp_path / 'ep.gif'}"]) == 0
    assert (tmp_path / "ep.gif").read_bytes()[:6] == b"GIF89a"

    ds = EpisodeDataset(out)
    action = zarr.open_array(str(out / "data/action"), mode="r+")
    action[int(ds.episode_ends[0]) + 3, 1] = np.nan  # corrupt episode 1, step 3
    state = zarr.open_array(str(out / "data/state"), mode="r+")
    state.resize((state.shape[0] + 2, state.shape[1]))  # and leave an uncommitted tail
    assert cli(["dataset", "validate", f"path={out}"]) == 1
    text = capsys.readouterr().out
    assert "error: data/action: non-finite values in episode 1 at step 3" in text
    assert "INVALID" in text and "uncommitted" not in text  # only data/state has the extra rows
    assert cli(["dataset", "validate", f"path={tmp_path / 'nope.zarr'}"]) == 1
    assert "does not exist" in capsys.readouterr().out
