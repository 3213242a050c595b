"""Fault suite, files: hostile configs stored in datasets/checkpoints are data, and corrupt chunks are found.

Each case reproduces a finding of the hardening issue: a nested `_target_` that wrote a file,
a deleted chunk that read as zeros, 16 overwritten bytes, a truncated chunk.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from robotlearn.config import ConfigError
from robotlearn.data import EpisodeDataset, EpisodeWriter
from robotlearn.data.layout import DatasetError, env_info_to_dict
from robotlearn.data.validate import validate
from robotlearn.envs import make_env


def _dataset(path: Path, episodes: int = 3, T: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, flush_every=7) as w:  # flushes that straddle episodes and chunks
        for _ in range(episodes):
            for t in range(T):
                w.add_step({"state": rng.normal(size=5).astype(np.float32),
                            "images/front": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)},
                           rng.uniform(-1, 1, 3).astype(np.float32), float(t == T - 1))
            w.end_episode(success=True, source="scripted")
    return path


def test_clean_dataset_validates_with_checksums(tmp_path):
    p = _dataset(tmp_path / "d.zarr")
    errors, warnings = validate(p)
    assert errors == [] and not any("checksum" in w for w in warnings)
    EpisodeDataset(p, verify=True)  # no raise


def test_deleted_chunk_is_reported_with_array_episode_and_chunk(tmp_path):
    p = _dataset(tmp_path / "d.zarr")
    chunk = p / "data/images/front/c/3/0/0/0"  # frames 12-15: episode 0
    assert chunk.is_file()
    chunk.unlink()
    assert EpisodeDataset(p).get_episode(0)["images/front"][12:16].max() == 0  # reads as zeros, no error
    errors, _ = validate(p)
    assert len(errors) == 1 and "data/images/front: episode 0" in errors[0] and "checksum mismatch" in errors[0]
    assert "chunk files missing: [3]" in errors[0]
    with pytest.raises(DatasetError, match="images/front: episode 0"):
        EpisodeDataset(p, verify=True)


def test_overwritten_bytes_are_detected(tmp_path):
    p = _dataset(tmp_path / "d.zarr", T=400)  # state chunks are 1024 steps: episode 2 spans chunks 0 and 1
    reader_before = EpisodeDataset(p).get_episode(1)["state"].copy()
    arr = zarr.open_array(str(p / "data/state"), mode="r+")
    arr[500:504] = arr[500:504] + 1e-3  # plausible values, written through zarr: a valid chunk
    assert not np.array_equal(EpisodeDataset(p).get_episode(1)["state"], reader_before)
    errors, _ = validate(p)
    assert errors == [errors[0]] and "data/state: episode 1 (steps 400-800) checksum mismatch" in errors[0]


def test_raw_byte_overwrite_and_truncation_never_crash(tmp_path):
    p = _dataset(tmp_path / "d.zarr")
    f = p / "data/state/c/0/0"
    raw = bytearray(f.read_bytes())
    raw[20:36] = bytes(range(16))  # 16 bytes inside the compressed stream
    f.write_bytes(bytes(raw))
    errors, _ = validate(p)
    assert errors and all("data/state" in e for e in errors)
    f.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated
    errors, _ = validate(p)
    assert len(errors) == 1 and "data/state: chunk data/state/c/0/0 is corrupt" in errors[0]
    with pytest.raises(DatasetError, match="is corrupt"):
        EpisodeDataset(p, verify=True)


def test_dataset_without_checksums_validates_structurally_and_says_so(tmp_path):
    p = _dataset(tmp_path / "d.zarr")
    import shutil

    shutil.rmtree(p / "meta/checksums")
    meta = json.loads((p / "zarr.json").read_text())
    meta["attributes"].pop("checksums")
    (p / "zarr.json").write_text(json.dumps(meta))
    errors, warnings = validate(p)
    assert errors == [] and any("no per-episode checksums" in w for w in warnings)
    with EpisodeWriter(p) as w:  # appending to an old dataset keeps working, still without checksums
        w.add_episode({"state": np.zeros((3, 5), np.float32), "images/front": np.zeros((3, 8, 8, 3), np.uint8),
                       "action": np.zeros((3, 3), np.float32)})
    assert EpisodeDataset(p).n_episodes == 4 and validate(p)[0] == []


def test_resumed_writer_checksums_new_episodes(tmp_path):
    p = _dataset(tmp_path / "d.zarr", episodes=2)
    w = EpisodeWriter(p)
    for _ in range(5):  # an interrupted episode: flushed rows, never committed
        w.add_step({"state": np.ones(5, np.float32), "images/front": np.ones((8, 8, 3), np.uint8)},
                   np.zeros(3, np.float32), 0.0)
    w._flush()
    w._lock_fd and __import__("os").close(w._lock_fd)  # the process died: its lock with it
    w._lock_fd = None
    with EpisodeWriter(p) as w2:
        assert w2.recovered["partial_steps"] == 5
        w2.add_episode({"state": np.full((4, 5), 2, np.float32), "images/front": np.full((4, 8, 8, 3), 2, np.uint8),
                        "action": np.zeros((4, 3), np.float32)})
    assert validate(p)[0] == []
    EpisodeDataset(p, verify=True)


# --- hostile configs --------------------------------------------------------------------------------------------

def test_env_target_outside_the_project_is_refused(tmp_path):
    victim = tmp_path / "written.txt"
    with pytest.raises(ConfigError, match="not an env of an allowed package"):
        make_env({"_target_": "pathlib.Path.write_text", "self": str(victim), "data": "owned"})
    with pytest.raises(ConfigError, match="overrides may not set"):
        make_env("sim/reach", _target_="builtins.open")
    with pytest.raises(ConfigError, match="is not a RobotEnv class"):
        make_env({"_target_": "robotlearn.atomic_dir.Path"})
    assert not victim.exists()


def test_nested_target_in_a_datasets_env_config_is_never_instantiated(tmp_path):
    """The finding: train-bc / eval with env= omitted instantiated a nested `_target_` from zarr.json."""
    from robotlearn.cli.train_bc import make_env_for

    victim = tmp_path / "written.txt"
    p = _dataset(tmp_path / "d.zarr", episodes=1)
    meta = json.loads((p / "zarr.json").read_text())
    env = make_env("sim/reach")
    meta["attributes"]["env"] = {**env_info_to_dict(env.env_info), "config": {
        "horizon": {"_target_": "pathlib.Path.write_text", "self": str(victim), "data": "owned"}}}
    env.close()
    (p / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError):
        make_env_for(None, EpisodeDataset(p))
    meta["attributes"]["env"]["config"] = {"_target_": "builtins.open", "file": str(victim), "mode": "w"}
    (p / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="overrides may not set"):
        make_env_for(None, EpisodeDataset(p))
    assert not victim.exists()
    meta["attributes"]["env"] = {"name": "sim/reach"}  # a malformed record: one clear error
    (p / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="malformed env record"):
        make_env_for(None, EpisodeDataset(p))


def test_dataset_validate_flags_a_hostile_env_record(tmp_path):
    """The finding: `dataset validate` said OK for a dataset whose env config held a nested `_target_`."""
    p = _dataset(tmp_path / "d.zarr", episodes=1)
    env = make_env("sim/reach")
    meta = json.loads((p / "zarr.json").read_text())
    meta["attributes"]["env"] = {**env_info_to_dict(env.env_info),
                                 "config": {"horizon": {"_target_": "pathlib.Path.write_text"}}}
    env.close()
    (p / "zarr.json").write_text(json.dumps(meta))
    errors, _ = validate(p)
    assert len(errors) == 1 and "attrs.env.config.horizon._target_" in errors[0]
