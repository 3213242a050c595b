"""`EpisodeWriter`: stream steps into a zarr dataset, one atomic commit per episode.

Steps are validated against the schema as they arrive (a bad step raises naming
the key and step, and is not recorded), buffered, and appended to `data/<key>`
every `flush_every` steps so long episodes with images never sit in memory.
`end_episode` writes the per-episode metadata and then `meta/episode_ends`; that
last write is the commit. Reopening a dataset after a crash trims the partial
episode (logged) and appends after the last committed one. An OS file lock keeps
a second writer out (the lock dies with the process, so kill -9 never wedges it).
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robotlearn.data import integrity, layout
from robotlearn.data.layout import DATA, META, META_FIELDS, SOURCES, DatasetError
from robotlearn.data.reader import scan
from robotlearn.envs.interface import EnvInfo

log = logging.getLogger(__name__)
STEP_KEYS = ("action", "reward", "is_intervention")
_DEFAULTS = {"reward": 0.0, "is_intervention": False}


KEEP_FLOAT64 = {"timestamp"}  # absolute times need float64; other floats are stored as float32


def _spec(shape, dtype, key: str = "") -> dict[str, Any]:
    dt = np.dtype(dtype)
    if dt == np.float64 and key not in KEEP_FLOAT64:  # float64 observations mostly come from python lists
        dt = np.dtype(np.float32)
    return {"shape": [int(s) for s in shape], "dtype": str(dt)}


def declared_schema(env_info: EnvInfo | None, obs_space, action_dim: int | None,
                    extras: dict[str, tuple] | None) -> tuple[dict[str, dict], list[str]] | None:
    """Schema from an observation space + action size (None when they are not given)."""
    if obs_space is None:
        return None
    if action_dim is None and env_info is not None:
        action_dim = len(env_info.action_spec.names)
    if action_dim is None:
        raise DatasetError("EpisodeWriter: obs_space given without action_dim or env_info to size the action")
    schema = {k: _spec(sp.shape, sp.dtype) for k, sp in obs_space.spaces.items()}
    obs_keys = sorted(schema)
    schema["action"] = _spec((action_dim,), np.float32)
    schema["reward"] = _spec((), np.float32)
    schema["is_intervention"] = _spec((), np.bool_)
    for k, (shape, dtype) in (extras or {}).items():
        schema[k] = _spec(shape, dtype, k)
    return dict(sorted(schema.items())), obs_keys


class EpisodeWriter:
    def __init__(self, path: str | Path, env_info: EnvInfo | None = None, obs_space=None,
                 action_dim: int | None = None, *, extras: dict[str, tuple] | None = None,
                 flush_every: int = 16, image_chunk_frames: int = layout.IMAGE_CHUNK_FRAMES,
                 overwrite: bool = False, attrs: dict[str, Any] | None = None) -> None:
        """`attrs` are extra root attributes stored when the dataset is created (e.g. control_hz, import info)."""
        self.path = Path(path)
        self._extra_attrs = dict(attrs or {})
        self.env_info = env_info
        self.flush_every = max(1, int(flush_every))
        self.image_chunk_frames = image_chunk_frames
        self.recovered: dict[str, Any] = {}  # what reopening trimmed: partial_steps, interrupted_commit
        self._root: zarr.Group | None = None
        self._lock_fd: int | None = None
        self._n_steps = 0
        self._pending: dict[str, list[np.ndarray]] = {}
        self._n_pending = 0
        self._t = 0  # steps in the current episode (written + pending)
        self._start_time = 0.0
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        declared = declared_schema(env_info, obs_space, action_dim, extras)
        if self.path.exists() and any(self.path.iterdir()):
            self._open_existing(declared)
        elif declared is not None:
            self._create(*declared)

    # --- opening / creating ----------------------------------------------
    def _lock(self) -> None:
        self._lock_fd = os.open(self.path / ".writer.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise DatasetError(f"{self.path}: another EpisodeWriter has this dataset open") from None

    def _create(self, schema: dict[str, dict], obs_keys: list[str]) -> None:
        """Build the empty store next to `path`, then rename it into place (creation is atomic)."""
        tmp = self.path.parent / f".{self.path.name}.creating-{uuid.uuid4().hex[:8]}"
        root = zarr.open_group(str(tmp), mode="w-")
        for key, spec in schema.items():
            layout.create_data_array(root, key, tuple(spec["shape"]), spec["dtype"], self.image_chunk_frames)
        for name, (dtype, fill) in META_FIELDS.items():
            layout.create_meta_array(root, name, dtype, fill)
        layout.create_meta_array(root, "episode_ends", "int64", 0)
        keys = sorted(schema)
        root.create_array(f"{META}/{integrity.CHECKSUMS}", shape=(0, len(keys)), chunks=(layout.META_CHUNK, len(keys)),
                          dtype="uint32", compressors=layout.compressor(False, root.metadata.zarr_format), fill_value=0)
        info = self.env_info
        root.attrs.update({
            "layout_version": layout.LAYOUT_VERSION,
            "schema": schema,
            "obs_keys": obs_keys,
            "control_hz": info.control_hz if info else None,
            "env": layout.env_info_to_dict(info) if info else None,
            "categories": {"source": list(SOURCES)},
            integrity.CHECKSUMS: {"algorithm": integrity.ALGORITHM, "keys": keys},
            **self._extra_attrs,
        })
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, self.path)  # also replaces an empty directory at `path`
        self._attach(zarr.open_group(str(self.path), mode="r+"))

    def _open_existing(self, declared) -> None:
        root = layout.open_root(self.path, mode="r+")
        attrs = dict(root.attrs)
        if "schema" not in attrs:
            raise DatasetError(f"{self.path} was not written by robotlearn (no schema attribute); "
                               "it can be read with EpisodeDataset but not appended to")
        if declared is not None and declared[0] != attrs["schema"]:
            diff = sorted(k for k in set(declared[0]) | set(attrs["schema"])
                          if declared[0].get(k) != attrs["schema"].get(k))
            raise DatasetError(f"{self.path}: schema differs from the env/obs_space given, keys {diff}: "
                               f"stored {[attrs['schema'].get(k) for k in diff]} vs given {[declared[0].get(k) for k in diff]}")
        stored_env = (attrs.get("env") or {}).get("name")
        if self.env_info is not None and stored_env not in (None, self.env_info.name):
            raise DatasetError(f"{self.path} holds episodes of env {stored_env!r}; refusing to append {self.env_info.name!r}")
        self._attach(root)
        self._recover()

    def _attach(self, root: zarr.Group) -> None:
        self._lock()
        self._root = root
        attrs = dict(root.attrs)
        self.schema: dict[str, dict] = attrs["schema"]
        self.obs_keys: list[str] = attrs["obs_keys"]
        self._categories: dict[str, list[str]] = attrs["categories"]
        self._data = layout.list_arrays(root[DATA])
        self._meta = layout.list_arrays(root[META])
        self._ends = self._meta.pop("episode_ends")
        # Datasets from before checksums (or foreign ones) get none: a CRC for only some episodes would mislead.
        self._sums = self._meta.pop(integrity.CHECKSUMS, None)
        self._sum_keys: list[str] = list((attrs.get(integrity.CHECKSUMS) or {}).get("keys", []))
        self._crc: dict[str, int] = {}
        self._n_steps = self._committed_steps(self._ends[:])

    def _recover(self) -> None:
        """Trim what a crash left after the last commit; refuse to touch a corrupt dataset."""
        snap = scan(self._root, str(self.path))
        if snap.errors:
            raise DatasetError("refusing to append to an inconsistent dataset:\n  " + "\n  ".join(snap.errors))
        n_ep, n = len(snap.episode_ends), self._committed_steps(snap.episode_ends)
        longest = max(a.shape[0] for a in self._data.values())
        if snap.interrupted_commit:
            self._ends.resize((n_ep,))
        self._n_steps = n
        for a in self._data.values():
            if a.shape[0] > n:
                a.resize((n, *a.shape[1:]))
        for a in self._meta.values():
            if a.shape[0] > n_ep:
                a.resize((n_ep,))
        if self._sums is not None and self._sums.shape[0] > n_ep:
            self._sums.resize((n_ep, self._sums.shape[1]))
        for stray in self.path.rglob("*.partial"):  # temp files of an interrupted atomic write
            stray.unlink(missing_ok=True)
        if longest > n or snap.interrupted_commit:
            self.recovered = {"partial_steps": longest - n, "interrupted_commit": snap.interrupted_commit}
            log.warning("%s: dropped an uncommitted episode tail of %d steps after episode %d (crash recovery)",
                        self.path, longest - n, n_ep - 1)

    @staticmethod
    def _committed_steps(ends: np.ndarray) -> int:
        return int(ends[-1]) if len(ends) else 0

    # --- state ------------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return 0 if self._root is None else self._ends.shape[0]

    @property
    def n_steps(self) -> int:
        """Committed steps (the end of the last committed episode)."""
        return self._n_steps

    @property
    def episode_steps(self) -> int:
        """Steps recorded so far in the episode in progress."""
        return self._t

    # --- recording --------------------------------------------------------
    def _check(self, key: str, value, where: str, leading: tuple[int, ...] = ()) -> np.ndarray:
        spec = self.schema[key]
        a = np.asarray(value)
        want = (*leading, *spec["shape"])
        if a.shape != want:
            raise DatasetError(f"{self.path}: {where}: key {key!r} has shape {a.shape}, schema says {want}")
        dt = np.dtype(spec["dtype"])
        if a.dtype != dt:
            if not np.can_cast(a.dtype, dt, "same_kind"):
                raise DatasetError(f"{self.path}: {where}: key {key!r} has dtype {a.dtype}, schema says {dt}")
            a = a.astype(dt)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise DatasetError(f"{self.path}: {where}: key {key!r} has non-finite values (NaN/inf)")
        return a

    def _route(self, obs: dict, step: dict, where: str) -> dict[str, Any]:
        unknown = sorted((set(obs) | set(step)) - set(self.schema))
        if unknown:
            raise DatasetError(f"{self.path}: {where}: keys {unknown} are not in the dataset schema {sorted(self.schema)}")
        values = {}
        src = {**step, **obs}
        for key in self.schema:
            if key not in src:
                if key not in _DEFAULTS:
                    raise DatasetError(f"{self.path}: {where}: missing key {key!r} (schema has {sorted(self.schema)})")
                continue
            values[key] = src[key]
        return values

    def add_step(self, obs: dict, action, reward, is_intervention: bool = False, **extras) -> None:
        """Record one control step: the observation the action was chosen from, the action, its reward."""
        if self._root is None:
            schema = {k: _spec(np.shape(v), np.asarray(v).dtype) for k, v in obs.items()}
            schema["action"] = _spec(np.shape(action), np.float32)
            schema["reward"] = _spec((), np.float32)
            schema["is_intervention"] = _spec((), np.bool_)
            schema.update({k: _spec(np.shape(v), np.asarray(v).dtype, k) for k, v in extras.items()})
            self._create(dict(sorted(schema.items())), sorted(obs))
        where = f"episode {self.n_episodes} step {self._t}"
        step = {"action": action, "reward": reward, "is_intervention": is_intervention, **extras}
        row = {k: self._check(k, v, where) for k, v in self._route(obs, step, where).items()}
        if self._t == 0:
            self._start_time = time.time()
        for k, v in row.items():
            self._pending.setdefault(k, []).append(v[None])
        self._n_pending += 1
        self._t += 1
        if self._n_pending >= self.flush_every:
            self._flush()

    def add_episode(self, arrays: dict[str, np.ndarray], **meta) -> int:
        """Write a whole episode ({key: (T, ...)}; reward/is_intervention default to 0) and commit it."""
        if self._t:
            raise DatasetError(f"{self.path}: add_episode() while an episode of {self._t} steps is being recorded")
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DatasetError(f"{self.path}: add_episode() arrays differ in length: {lengths}")
        T = next(iter(lengths.values()))
        if self._root is None:
            schema = {k: _spec(np.shape(v)[1:], np.asarray(v).dtype, k) for k, v in arrays.items()}
            schema.setdefault("reward", _spec((), np.float32))
            schema.setdefault("is_intervention", _spec((), np.bool_))
            self._create(dict(sorted(schema.items())), sorted(set(schema) - {*STEP_KEYS}))
        checked = self.check_episode(arrays)
        self._start_time = time.time()
        for k, v in checked.items():
            self._pending.setdefault(k, []).append(v)
        self._n_pending, self._t = T, T
        return self.end_episode(**meta)

    def check_episode(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate a whole episode against the schema without writing; returns the arrays add_episode would write."""
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DatasetError(f"{self.path}: episode arrays differ in length: {lengths}")
        T = next(iter(lengths.values()))
        where = f"episode {self.n_episodes} (add_episode, {T} steps)"
        arrays = {**{k: np.full(T, v) for k, v in _DEFAULTS.items() if k in self.schema}, **arrays}
        values = self._route({}, arrays, where)
        return {k: self._check(k, v, where, leading=(T,)) for k, v in values.items()}

    def _flush(self) -> None:
        """Append the pending steps to data/<key> (uncommitted until end_episode)."""
        if not self._n_pending:
            return
        start = self.n_steps + self._t - self._n_pending
        for key, parts in self._pending.items():
            a = self._data[key]
            block = np.concatenate(parts)
            layout.grow(a, start + len(block))
            a[start : start + len(block)] = block
            self._crc[key] = integrity.crc32(block, self._crc.get(key, 0))
        self._pending = {}
        self._n_pending = 0

    def _meta_value(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and name not in self._categories:  # a new text field: stored as a category
            self._categories[name] = []
        if name in self._categories:
            names = self._categories[name]
            if value not in names:
                names.append(str(value))
                self._root.attrs["categories"] = self._categories
            if name not in self._meta:
                self._meta[name] = layout.create_meta_array(self._root, name, "int8", -1, length=self.n_episodes)
            return names.index(value)
        if name not in self._meta:
            v = np.asarray(value)
            if v.ndim != 0 or v.dtype.kind not in "biuf":
                raise DatasetError(f"{self.path}: episode metadata {name!r}={value!r} must be a number or bool")
            dtype, fill = {"b": ("bool", False), "f": ("float64", np.nan)}.get(v.dtype.kind, ("int64", -1))
            self._meta[name] = layout.create_meta_array(self._root, name, dtype, fill, length=self.n_episodes)
        return value

    def end_episode(self, success: bool = False, source: str = "unknown", policy_version: int = -1,
                    terminated: bool | None = None, **meta) -> int:
        """Commit the episode in progress; returns its index. `terminated` defaults to `success`."""
        if self._t == 0:
            raise DatasetError(f"{self.path}: end_episode() with no recorded steps")
        self._flush()
        n_ep = self.n_episodes
        fields = {"success": bool(success), "length": self._t, "source": source,
                  "policy_version": int(policy_version), "start_time": self._start_time,
                  "end_time": time.time(), "terminated": bool(success if terminated is None else terminated), **meta}
        fields = {k: self._meta_value(k, v) for k, v in fields.items()}
        for name, a in self._meta.items():
            layout.grow(a, n_ep + 1)
            a[n_ep] = fields.get(name, a.fill_value)
        if self._sums is not None:
            layout.grow(self._sums, n_ep + 1)
            self._sums[n_ep] = np.array([self._crc.get(k, 0) for k in self._sum_keys], np.uint32)
        self._crc = {}
        end = self.n_steps + self._t
        layout.grow(self._ends, n_ep + 1)
        self._ends[n_ep] = end  # the commit
        self._n_steps, self._t = end, 0
        return n_ep

    def discard_episode(self) -> None:
        """Drop the episode in progress (nothing committed is touched)."""
        self._pending, self._n_pending, self._t, self._crc = {}, 0, 0, {}
        if self._root is None:
            return
        n = self.n_steps
        for a in self._data.values():
            if a.shape[0] > n:
                a.resize((n, *a.shape[1:]))

    def close(self) -> None:
        if self._t:
            log.warning("%s: closing with an uncommitted episode of %d steps; discarding it", self.path, self._t)
            self.discard_episode()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
