"""zarr episodes -> a LeRobot v3.0 dataset folder (the layout robotlearn/data/importers/lerobot.py reads).

Writes `data/chunk-XXX/file-XXX.parquet` (many episodes per file), one MP4 per camera and file
under `videos/<feature>/` (episodes concatenated, H.264 by default), `meta/info.json`,
`meta/stats.json` (min, max, mean, std, count per feature; camera stats per channel in [0, 1],
shaped (3, 1, 1) as LeRobot has them), `meta/tasks.parquet` and `meta/episodes/...parquet`.
Keys are named by `lerobot_feature`; scalars become one-number columns (shape [1]); the
episode's `terminated` becomes `next.done` on its last frame, and every robotlearn episode
field is kept as a `robotlearn.<field>` column of the episodes table and the recording env as
info.json `robotlearn_env`, so the import restores both.
The folder appears only when complete (written beside it, then renamed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from robotlearn.atomic_dir import atomic_dir
from robotlearn.data.importers.lerobot import META_PREFIX, lerobot_feature
from robotlearn.data.layout import IMAGE_PREFIX, DatasetError
from robotlearn.data.reader import EpisodeDataset
from robotlearn.progress import progress_bar

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


@dataclass
class LeRobotExportConfig:
    fps: Optional[float] = None  # frame rate; default: the dataset's control_hz
    codec: str = "h264"  # camera video codec: h264, or av1 (LeRobot's own default)
    crf: int = 15  # constant rate factor: lower keeps frames closer to the originals, files grow
    pix_fmt: str = "yuv420p"  # what players and LeRobot expect; yuv444p keeps colour detail
    gop: int = 2  # a keyframe every N frames: fast random access, as LeRobot encodes
    data_file_mb: float = 100.0  # a new data parquet file once one holds this much (LeRobot's default)
    video_file_mb: float = 200.0  # a new mp4 per camera once one is this big (LeRobot's default)
    chunks_size: int = 1000  # files per chunk-XXX folder
    task: str = ""  # task text of episodes without a `task` field (default: the env name, else "task")
    robot_type: str = ""  # info.json robot_type (default: the env name)


class _Rotating:
    """Consecutive files of one stream (data parquet or one camera's mp4): file k is chunk k // size, file k % size."""

    def __init__(self, chunks_size: int) -> None:
        self.chunks_size, self.k = chunks_size, 0

    @property
    def where(self) -> dict[str, int]:
        return {"chunk_index": self.k // self.chunks_size, "file_index": self.k % self.chunks_size}


class _Stats:
    """Running min / max / mean / std over frames (per channel for cameras)."""

    def __init__(self) -> None:
        self.n, self.s, self.ss, self.lo, self.hi = 0, 0.0, 0.0, None, None

    def add(self, v: np.ndarray, axes: tuple[int, ...]) -> None:
        v = v.astype(np.float64)
        self.n += int(np.prod([v.shape[a] for a in axes]))
        self.s = self.s + v.sum(axes)
        self.ss = self.ss + (v * v).sum(axes)
        lo, hi = v.min(axes), v.max(axes)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)

    def to_dict(self, frames: int, shape: tuple[int, ...] = ()) -> dict[str, Any]:
        mean = self.s / self.n
        std = np.sqrt(np.maximum(self.ss / self.n - mean * mean, 0.0))
        out = {k: np.asarray(v).reshape(shape or np.shape(v) or (1,)).tolist()
               for k, v in (("min", self.lo), ("max", self.hi), ("mean", mean), ("std", std))}
        out["count"] = [frames]
        return out


def _column(v: np.ndarray):
    """(T, ...) -> an arrow column: scalars plain, vectors and matrices as (nested) fixed-size lists."""
    import pyarrow as pa

    if v.ndim == 1:
        return pa.array(v)
    flat = pa.array(np.ascontiguousarray(v).reshape(-1))
    for size in reversed(v.shape[1:]):
        flat = pa.FixedSizeListArray.from_arrays(flat, size)
    return flat


def _tasks_table(tasks: list[str]):
    """meta/tasks.parquet as pandas writes it (task text as the index), so LeRobot reads it unchanged."""
    import pyarrow as pa

    pandas_meta = {"index_columns": ["task"], "column_indexes": [], "pandas_version": "2.2.3", "creator": {"library": "pyarrow"},
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}]}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _meta_value(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def export_lerobot(src: str | Path, out: str | Path, cfg: LeRobotExportConfig | None = None,
                   key_map: dict[str, str] | None = None, overwrite: bool = False, progress: Any = "auto") -> dict[str, Any]:
    """Write `src` (read through `key_map`) as a LeRobot v3.0 folder `out`; returns info.json's content."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from robotlearn.data.video import VideoEncoder
    from robotlearn.data.view import as_uint8

    cfg = cfg or LeRobotExportConfig()
    ds = EpisodeDataset(src, key_map=key_map)
    out = Path(out)
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} exists; pass overwrite=true to replace it")
    if ds.n_episodes == 0:
        raise DatasetError(f"{src} has no committed episodes to export")
    fps = cfg.fps or ds.control_hz
    if not fps:
        raise DatasetError(f"{src} records no control rate; give the frame rate with export.fps=<Hz>")
    env = ds.env_info
    cams = [k for k in ds.keys if k.startswith(IMAGE_PREFIX)]
    lowdim = [k for k in ds.keys if k not in cams]
    names = {k: lerobot_feature(k) for k in ds.keys}
    clash = sorted({f for f in names.values() if list(names.values()).count(f) > 1})
    if clash:
        raise DatasetError(f"{src}: several keys export as LeRobot feature(s) {clash}; rename them with keys=")
    for k in cams:
        shape = ds.array(k).shape[1:]
        if len(shape) != 3 or shape[-1] != 3:
            raise DatasetError(f"{src}: camera {k} is {tuple(shape)} per frame; export needs (H, W, 3)")
    default_task = cfg.task or (env.name if env else "task")

    features: dict[str, dict] = {}
    for k in lowdim:
        a = ds.array(k)
        entry = {"dtype": str(a.dtype), "shape": list(a.shape[1:]) or [1], "names": None}
        if k == "state" and env is not None and len(env.state_names) == a.shape[1]:
            entry["names"] = list(env.state_names)
        if k == "action" and env is not None and len(env.action_spec.names) == a.shape[1]:
            entry["names"] = list(env.action_spec.names)
        features[names[k]] = entry
    for k in cams:
        h, w, c = ds.array(k).shape[1:]
        features[names[k]] = {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                              "info": {"video.height": h, "video.width": w, "video.codec": cfg.codec,
                                       "video.pix_fmt": cfg.pix_fmt, "video.is_depth_map": False, "video.fps": fps,
                                       "video.channels": c, "has_audio": False}}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                        ("index", "int64"), ("task_index", "int64")):
        features[name] = {"dtype": dtype, "shape": [1], "names": None}

    tasks: list[str] = []
    stats = {k: _Stats() for k in ds.keys}
    episodes: list[dict[str, Any]] = []
    with atomic_dir(out) as tmp:
        data_files, data_writer, data_bytes = _Rotating(cfg.chunks_size), None, 0
        video_files = {k: _Rotating(cfg.chunks_size) for k in cams}
        encoders: dict[str, VideoEncoder] = {}
        index = 0
        try:
            bar = progress_bar(range(ds.n_episodes), mode=progress, desc=f"export {Path(src).name}", unit="ep")
            for i in bar:
                ep, meta = ds.get_episode(i), ds.episode_meta(i)
                T = len(ep[ds.keys[0]])
                task = meta["task"] if isinstance(meta.get("task"), str) else default_task
                if task not in tasks:
                    tasks.append(task)
                row: dict[str, Any] = {"episode_index": i, "tasks": [task], "length": T}
                cols = {names[k]: _column(ep[k]) for k in lowdim}
                for k in lowdim:
                    stats[k].add(ep[k].reshape(T, -1) if ep[k].ndim > 1 else ep[k][:, None], (0,))
                done = np.zeros(T, bool)
                done[-1] = bool(meta.get("terminated"))
                cols["next.done"] = pa.array(done)
                cols["timestamp"] = pa.array((np.arange(T) / fps).astype(np.float32))
                cols["frame_index"] = pa.array(np.arange(T, dtype=np.int64))
                cols["episode_index"] = pa.array(np.full(T, i, np.int64))
                cols["index"] = pa.array(np.arange(index, index + T, dtype=np.int64))
                cols["task_index"] = pa.array(np.full(T, tasks.index(task), np.int64))
                table = pa.table(cols)
                if data_writer is not None and data_bytes > cfg.data_file_mb * 1e6:
                    data_writer.close()
                    data_writer, data_bytes = None, 0
                    data_files.k += 1
                if data_writer is None:
                    path = tmp / DATA_PATH.format(**data_files.where)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    data_writer = pq.ParquetWriter(str(path), table.schema)
                data_writer.write_table(table)
                data_bytes += table.nbytes
                row.update({f"data/{k}": v for k, v in data_files.where.items()})
                row.update({"dataset_from_index": index, "dataset_to_index": index + T})
                for k in cams:
                    enc = encoders.get(k)
                    if enc is not None and enc.size_bytes > cfg.video_file_mb * 1e6:
                        enc.close()
                        enc = None
                        video_files[k].k += 1
                    if enc is None:
                        path = tmp / VIDEO_PATH.format(video_key=names[k], **video_files[k].where)
                        enc = encoders[k] = VideoEncoder(path, fps, cfg.codec, cfg.crf, cfg.pix_fmt, cfg.gop)
                    frames = as_uint8(ep[k])
                    stats[k].add(frames / 255.0, (0, 1, 2))
                    t0, t1 = enc.add(frames)
                    prefix = f"videos/{names[k]}/"
                    row.update({prefix + n: v for n, v in video_files[k].where.items()})
                    row.update({prefix + "from_timestamp": t0, prefix + "to_timestamp": t1})
                row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
                row.update({META_PREFIX + n: _meta_value(v) for n, v in meta.items() if n != "length"})
                episodes.append(row)
                index += T
        finally:
            if data_writer is not None:
                data_writer.close()
            for enc in encoders.values():
                enc.close()
        path = tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(episodes), path)
        pq.write_table(_tasks_table(tasks), tmp / "meta" / "tasks.parquet")
        stats_json = {names[k]: stats[k].to_dict(index, (3, 1, 1) if k in cams else ()) for k in ds.keys}
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats_json, indent=2))
        info = {"codebase_version": "v3.0", "robot_type": cfg.robot_type or (env.name if env else "unknown"),
                "total_episodes": ds.n_episodes, "total_frames": index, "total_tasks": len(tasks),
                "chunks_size": cfg.chunks_size, "data_files_size_in_mb": cfg.data_file_mb,
                "video_files_size_in_mb": cfg.video_file_mb, "fps": fps, "splits": {"train": f"0:{ds.n_episodes}"},
                "data_path": DATA_PATH, "video_path": VIDEO_PATH if cams else None, "features": features,
                "robotlearn_keys": {names[k]: k for k in ds.keys}, "robotlearn_env": ds.attrs.get("env")}
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return info
