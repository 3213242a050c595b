"""LeRobot datasets (layouts v3.0 and v2.1) -> zarr episodes.

v3.0: `meta/info.json` (fps, features, data_path / video_path templates), `meta/tasks.parquet`,
`meta/episodes/chunk-XXX/file-XXX.parquet` (one row per episode: length, data file, per-camera
video file and from/to timestamps), `data/chunk-XXX/file-XXX.parquet` (many episodes per file),
`videos/<key>/chunk-XXX/file-XXX.mp4` (episodes concatenated).
v2.1: one parquet and one mp4 per episode, `meta/episodes.jsonl`, `meta/tasks.jsonl`.

Features become robotlearn keys (`FEATURE_NAMES`; `keys=` adds or overrides renames):
    observation.state -> state, observation.images.<cam> -> images/<cam>, observation.image -> images/image,
    action -> action, next.reward -> reward; any other feature keeps its name.
Bookkeeping columns (timestamp, frame_index, ...) are not copied. Per episode: `task` (text,
stored as a category), `terminated` from `next.done`, `success` from `next.success` (else a
positive final reward, as for robomimic). Columns `robotlearn.<field>` of the episodes table
(written by export-lerobot) come back as that episode metadata, info.json `robotlearn_env` as
the recording env. fps -> control_hz.
Video frames are matched to the parquet `timestamp` of each frame (robotlearn/data/video.py).

The import commits one episode at a time through EpisodeWriter; re-running the same command
after a crash resumes after the last committed episode.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robotlearn.data.layout import IMAGE_PREFIX, DatasetError
from robotlearn.data.writer import EpisodeWriter
from robotlearn.progress import progress_bar

SUPPORTED_VERSIONS = ("v2.1", "v3.0")
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CAMERA_PREFIX = "observation.images."
FEATURE_NAMES = {"observation.state": "state", "observation.image": IMAGE_PREFIX + "image",
                 "action": "action", "next.reward": "reward"}
EPISODE_FLAGS = {"next.done": "terminated", "next.success": "success"}  # per-step flags read as episode metadata
META_PREFIX = "robotlearn."  # episodes-table columns carrying robotlearn episode metadata
LOWDIM_1D = ("state", "action")  # never scalars, even when LeRobot stores them as one number


def robotlearn_key(feature: str) -> str:
    """The robotlearn key a LeRobot feature is imported as."""
    if feature.startswith(CAMERA_PREFIX):
        return IMAGE_PREFIX + feature[len(CAMERA_PREFIX):]
    if feature.startswith(META_PREFIX):
        return feature[len(META_PREFIX):]
    return FEATURE_NAMES.get(feature, feature)


def lerobot_feature(key: str) -> str:
    """The LeRobot feature a robotlearn key is exported as. Not always invertible by `robotlearn_key`
    (`images/panda/wrist` -> `observation.images.panda.wrist`), so an export also lists its
    {feature: key} pairs in info.json `robotlearn_keys`, which the import reads first."""
    inverse = {v: k for k, v in FEATURE_NAMES.items() if not v.startswith(IMAGE_PREFIX)}
    if key.startswith(IMAGE_PREFIX):
        return CAMERA_PREFIX + key[len(IMAGE_PREFIX):].replace("/", ".")
    if key in BOOKKEEPING or key in EPISODE_FLAGS:  # names LeRobot itself uses for other things
        return META_PREFIX + key
    return inverse.get(key, key)


@dataclass
class EpisodeRef:
    """Where one LeRobot episode's rows and frames are."""

    index: int
    length: int
    data_file: Path
    videos: dict[str, tuple[Path, float]] = field(default_factory=dict)  # feature -> (mp4, from_timestamp)
    task: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # robotlearn.<field> columns


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(f"{path.parent.parent}: not a LeRobot dataset (no {path.relative_to(path.parent.parent)})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"{path.parent.parent}: LeRobot v2.1 dataset without {path.name} (looked for {path})")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _parquet(path: Path, columns: list[str] | None = None):
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DatasetError(f"LeRobot parquet file {path} does not exist")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for a file that is not parquet
        raise DatasetError(f"{path}: not a readable parquet file ({e})") from e


def column_to_numpy(col, shape: tuple[int, ...]) -> np.ndarray:
    """A (possibly nested list) arrow column -> (N, *shape); scalar columns -> (N,)."""
    import pyarrow as pa

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n, nested = len(arr), False
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        arr, nested = arr.flatten(), True
    values = arr.to_numpy(zero_copy_only=False)
    if not nested:
        return values
    if values.size != n * int(np.prod(shape)):
        raise DatasetError(f"has {values.size // max(n, 1)} values per frame, info.json says shape {list(shape)}")
    return values.reshape(n, *shape)


def _decode_images(col) -> np.ndarray:
    """dtype 'image' features: PNG/JPEG bytes in a struct {bytes, path} column."""
    from PIL import Image

    frames = []
    for item in col.to_pylist():
        data = item.get("bytes") if isinstance(item, dict) else item
        if data is None:
            raise DatasetError("an image cell has no bytes (images stored only as external paths are not supported)")
        frames.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return np.stack(frames)


class LeRobotSource:
    """A LeRobot dataset folder: its metadata and one episode at a time."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"no LeRobot dataset at {self.root}: not a folder")
        self.info = _read_json(self.root / "meta" / "info.json")
        self.version = str(self.info.get("codebase_version", ""))
        if self.version not in SUPPORTED_VERSIONS:
            raise DatasetError(f"{self.root}: LeRobot codebase_version {self.version!r} is not supported "
                               f"(supported: {', '.join(SUPPORTED_VERSIONS)})")
        for need in ("fps", "features", "data_path"):
            if need not in self.info:
                raise DatasetError(f"{self.root}/meta/info.json lacks {need!r}")
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.videos = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        if self.videos and "video_path" not in self.info:
            raise DatasetError(f"{self.root}/meta/info.json has video features {self.videos} but no 'video_path'")
        self.tasks = self._tasks()
        self.episodes = self._episodes_v3() if self.version.startswith("v3") else self._episodes_v2()
        self._table_path: Path | None = None
        self._table = None

    # --- metadata --------------------------------------------------------------
    def _tasks(self) -> dict[int, str]:
        if self.version.startswith("v2"):
            path = self.root / "meta" / "tasks.jsonl"
            return {int(t["task_index"]): str(t["task"]) for t in _jsonl(path)} if path.is_file() else {}
        path = self.root / "meta" / "tasks.parquet"
        if not path.is_file():
            return {}
        t = _parquet(path)
        text = [c for c in t.column_names if c != "task_index"]  # the task string (pandas index or a column)
        if "task_index" not in t.column_names or not text:
            raise DatasetError(f"{path}: expected a task string column and 'task_index', found {t.column_names}")
        return dict(zip(t.column("task_index").to_pylist(), map(str, t.column(text[0]).to_pylist())))

    def _path(self, template_key: str, **fields) -> Path:
        return self.root / self.info[template_key].format(**fields)

    def _episodes_v3(self) -> list[EpisodeRef]:
        import pyarrow as pa

        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise DatasetError(f"{self.root}: LeRobot v3.0 dataset without meta/episodes/chunk-*/file-*.parquet")
        table = pa.concat_tables([_parquet(f) for f in files], promote_options="default")
        rows = sorted(table.to_pylist(), key=lambda r: r["episode_index"])
        refs = []
        for r in rows:
            where = f"{self.root}: meta/episodes row of episode {r.get('episode_index')}"
            try:
                data = self._path("data_path", chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
                videos = {k: (self._path("video_path", video_key=k, chunk_index=r[f"videos/{k}/chunk_index"],
                                         file_index=r[f"videos/{k}/file_index"]), float(r[f"videos/{k}/from_timestamp"]))
                          for k in self.videos}
            except KeyError as e:
                raise DatasetError(f"{where} lacks column {e}") from None
            tasks = r.get("tasks") or []
            meta = {k[len(META_PREFIX):]: v for k, v in r.items() if k.startswith(META_PREFIX) and v is not None}
            refs.append(EpisodeRef(int(r["episode_index"]), int(r["length"]), data, videos,
                                   str(tasks[0]) if tasks else None, meta))
        return refs

    def _episodes_v2(self) -> list[EpisodeRef]:
        chunk = int(self.info.get("chunks_size", 1000))
        refs = []
        for e in sorted(_jsonl(self.root / "meta" / "episodes.jsonl"), key=lambda e: e["episode_index"]):
            i = int(e["episode_index"])
            fields = {"episode_chunk": i // chunk, "episode_index": i}
            videos = {k: (self._path("video_path", video_key=k, **fields), 0.0) for k in self.videos}
            tasks = e.get("tasks") or []
            refs.append(EpisodeRef(i, int(e["length"]), self._path("data_path", **fields), videos,
                                   str(tasks[0]) if tasks else None))
        return refs

    # --- one episode -------------------------------------------------------------
    def _rows(self, ref: EpisodeRef):
        """The episode's rows of its data file, in frame order (a data file is read once for all its episodes)."""
        import pyarrow.compute as pc

        if self._table_path != ref.data_file:
            self._table, self._table_path = _parquet(ref.data_file), ref.data_file
        t = self._table
        if "episode_index" in t.column_names:
            t = t.filter(pc.equal(t.column("episode_index"), ref.index))
        if "frame_index" in t.column_names:
            t = t.sort_by("frame_index")
        if t.num_rows != ref.length:
            raise DatasetError(f"{ref.data_file}: episode {ref.index} has {t.num_rows} rows, the episode metadata "
                               f"says length {ref.length}")
        return t

    def read_episode(self, ref: EpisodeRef) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """({feature: (T, ...)}, {episode metadata}) of one episode, features under their LeRobot names."""
        from robotlearn.data.video import decode_frames

        rows = self._rows(ref)
        where = f"{self.root}: episode {ref.index}"
        arrays: dict[str, np.ndarray] = {}
        for name, spec in self.features.items():
            if name in BOOKKEEPING:
                continue
            if spec.get("dtype") == "video":
                if "timestamp" in rows.column_names:
                    times = column_to_numpy(rows.column("timestamp"), (1,)).reshape(-1).astype(np.float64)
                else:
                    times = np.arange(ref.length) / self.fps
                path, start = ref.videos[name]
                arrays[name] = decode_frames(path, start + times, self.fps, f"{where} {name}")
            elif name not in rows.column_names:
                raise DatasetError(f"{where}: feature {name!r} of info.json is not a column of {ref.data_file}")
            elif spec.get("dtype") == "image":
                try:
                    arrays[name] = _decode_images(rows.column(name))
                except DatasetError as e:
                    raise DatasetError(f"{where} {name}: {e}") from None
            else:
                try:
                    arrays[name] = column_to_numpy(rows.column(name), tuple(spec.get("shape") or ()))
                except DatasetError as e:
                    raise DatasetError(f"{ref.data_file}: {name} {e}") from None
        meta: dict[str, Any] = {}
        for flag, field_name in EPISODE_FLAGS.items():
            if flag in arrays:
                meta[field_name] = bool(np.asarray(arrays.pop(flag)).reshape(ref.length, -1)[-1].any())
        if ref.task is None and "task_index" in rows.column_names and self.tasks:
            ref.task = self.tasks.get(int(rows.column("task_index")[0].as_py()))
        if ref.task is not None:
            meta["task"] = ref.task
        meta.update(ref.meta)
        return arrays, meta


def _to_robotlearn(arrays: dict[str, np.ndarray], key_map: dict[str, str]) -> dict[str, np.ndarray]:
    out = {}
    for name, v in arrays.items():
        key = key_map.get(name) or robotlearn_key(name)
        if key in out:
            raise DatasetError(f"LeRobot features map to the same key {key!r}; rename one with keys='{{{name}: ...}}'")
        if key == "reward":
            v = v.reshape(len(v))
        elif key in LOWDIM_1D and v.ndim == 1:
            v = v[:, None]
        out[key] = v
    return out


def import_lerobot(src: str | Path, out: str | Path, key_map: dict[str, str] | None = None,
                   overwrite: bool = False, progress: Any = "auto") -> int:
    """Convert every episode of a LeRobot dataset folder; returns the number of episodes `out` holds.

    `key_map` renames LeRobot features ({feature: robotlearn key}) beyond the default names.
    An existing `out` imported from the same `src` is resumed; any other needs overwrite=True.
    """
    source = LeRobotSource(src)
    key_map = dict(key_map or {})
    unknown = sorted(set(key_map) - set(source.features))
    if unknown:
        raise DatasetError(f"{src}: keys= renames features {unknown}, which info.json does not have "
                           f"(features: {sorted(source.features)})")
    out = Path(out)
    provenance = {"from": "lerobot", "src": str(Path(src).resolve()), "codebase_version": source.version,
                  "robot_type": source.info.get("robot_type"), "keys": key_map, "features": source.features}
    if out.exists() and any(out.iterdir()) and not overwrite:
        from robotlearn.data.reader import EpisodeDataset

        prior = (EpisodeDataset(out).attrs.get("import") or {})
        if (prior.get("from"), prior.get("src"), prior.get("keys")) != ("lerobot", provenance["src"], key_map):
            raise DatasetError(f"{out} exists and is not an import of {provenance['src']} with these keys; "
                               f"pass overwrite=true to replace it")
    attrs = {"control_hz": source.fps, "import": provenance}
    if source.info.get("robotlearn_env"):  # written by export-lerobot: the env that recorded the episodes
        attrs["env"] = source.info["robotlearn_env"]
    with EpisodeWriter(out, overwrite=overwrite, attrs=attrs) as w:
        done = w.n_episodes
        if w.recovered:
            print(f"{out}: dropped an interrupted episode ({w.recovered['partial_steps']} steps); resuming")
        todo = source.episodes[done:]
        bar = progress_bar(todo, mode=progress, desc=f"import {Path(src).name}", unit="ep", initial=done,
                           total=len(source.episodes))
        for ref in bar:
            arrays, meta = source.read_episode(ref)
            ep = _to_robotlearn(arrays, {**source.info.get("robotlearn_keys", {}), **key_map})
            reward = ep.get("reward")
            meta.setdefault("success", bool(reward is not None and reward[-1] > 0))
            meta.setdefault("source", "human")
            meta.setdefault("terminated", meta["success"])
            meta.setdefault("lerobot_episode", ref.index)
            w.add_episode(ep, **meta)
            bar.set_postfix(frames=w.n_steps)
        bar.close()
        return w.n_episodes
