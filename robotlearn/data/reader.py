"""`EpisodeDataset`: read committed episodes of a zarr dataset (robotlearn, diffusion_policy, zarr v2 or v3).

Only `meta/episode_ends` is trusted: data beyond its last entry belongs to an
episode that was still being recorded (or crashed) and is reported as
`partial_steps`, never returned as an episode. Safe to use while a writer appends;
call `refresh()` to see newly committed episodes. `key_map` renames arrays as they are read
(robotlearn/data/keys.py), e.g. a diffusion_policy zarr's `img` as `images/front`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robotlearn.data import layout
from robotlearn.data.keys import apply_key_map
from robotlearn.data.integrity import CHECKSUMS
from robotlearn.data.layout import DATA, EPISODE_ENDS, META, META_FIELDS, DatasetError
from robotlearn.envs.interface import EnvInfo


@dataclass
class Snapshot:
    """What a consistency scan of a dataset root found."""

    episode_ends: np.ndarray  # (E,) committed cumulative ends
    data: dict[str, zarr.Array]
    meta: dict[str, zarr.Array]
    partial_steps: int = 0  # rows present in every data array beyond the last commit
    interrupted_commit: bool = False  # a trailing episode_ends entry that was resized but never written
    errors: list[str] = field(default_factory=list)


def scan(root: zarr.Group, path: str = "") -> Snapshot:
    """Check episode_ends against itself and the array lengths; errors name the key/episode."""
    raw = np.asarray(root[EPISODE_ENDS][:], dtype=np.int64)
    interrupted = len(raw) > 0 and raw[-1] == 0  # fill value: commit resized but not written
    ends = raw[:-1] if interrupted else raw
    errors: list[str] = []
    if len(ends) and ends[0] <= 0:
        errors.append(f"{path}: meta/episode_ends[0]={ends[0]}: episode 0 would be empty")
    bad = np.flatnonzero(np.diff(ends) <= 0)
    for i in bad[:5]:
        errors.append(f"{path}: meta/episode_ends[{i + 1}]={ends[i + 1]} is not greater than "
                      f"episode_ends[{i}]={ends[i]} (episode {i + 1} is empty or out of order)")
    data = layout.list_arrays(root[DATA])
    if not data:
        errors.append(f"{path}: data/ holds no arrays")
    n = int(ends[-1]) if len(ends) else 0
    for k, a in data.items():
        if a.shape[0] < n:
            ep = int(np.searchsorted(ends, a.shape[0], side="right"))
            errors.append(f"{path}: data/{k} has {a.shape[0]} steps but meta/episode_ends ends at {n}: "
                          f"episode {ep} (ends at {ends[ep]}) and later are missing in data/{k}")
    meta = {k: v for k, v in layout.list_arrays(root[META]).items() if k != "episode_ends"}
    meta.pop(CHECKSUMS, None)  # (E, K), not a per-episode field: robotlearn.data.integrity reads it
    sums = root.get(f"{META}/{CHECKSUMS}")
    if sums is not None and sums.shape[0] < len(ends):
        errors.append(f"{path}: meta/{CHECKSUMS} has {sums.shape[0]} entries for {len(ends)} committed episodes")
    for k, a in meta.items():
        if a.shape[0] < len(ends):
            errors.append(f"{path}: meta/{k} has {a.shape[0]} entries for {len(ends)} committed episodes")
    partial = max(0, min((a.shape[0] for a in data.values()), default=0) - n)
    return Snapshot(ends, data, meta, partial, bool(interrupted), errors)


class EpisodeDataset:
    """Read-only view of the committed episodes of a dataset directory."""

    def __init__(self, path: str | Path, verify: bool = False,
                 key_map: dict[str, str] | None = None) -> None:
        """`verify`: check every chunk header and episode checksum on open (reads the whole dataset once)."""
        self.path = Path(path)
        self.verify = verify
        self.key_map = dict(key_map or {})  # {array on disk: the name it is read as}
        self.refresh()

    def refresh(self) -> None:
        """Re-read episode_ends and array shapes (see episodes a concurrent writer committed)."""
        self._root = layout.open_root(self.path, mode="r")
        snap = scan(self._root, str(self.path))
        if snap.errors:
            raise DatasetError("inconsistent dataset:\n  " + "\n  ".join(snap.errors))
        if self.verify:
            from robotlearn.data.integrity import check_chunk_files, verify_checksums

            bad = check_chunk_files(self.path, snap.data) or verify_checksums(
                self.path, self._root, snap.episode_ends, snap.data)[0]
            if bad:
                raise DatasetError(f"{self.path} is corrupt (verify=true):\n  " + "\n  ".join(bad))
        snap.data = apply_key_map(snap.data, self.key_map, str(self.path))
        self._snap = snap
        self.attrs: dict[str, Any] = dict(self._root.attrs)

    # --- structure --------------------------------------------------------
    @property
    def episode_ends(self) -> np.ndarray:
        return self._snap.episode_ends

    @property
    def n_episodes(self) -> int:
        return len(self._snap.episode_ends)

    def __len__(self) -> int:
        return self.n_episodes

    @property
    def n_steps(self) -> int:
        return int(self._snap.episode_ends[-1]) if self.n_episodes else 0

    @property
    def keys(self) -> list[str]:
        return list(self._snap.data)

    @property
    def meta_keys(self) -> list[str]:
        """Per-episode metadata arrays stored under meta/ (besides episode_ends)."""
        return list(self._snap.meta)

    @property
    def partial_steps(self) -> int:
        """Steps of an uncommitted (in-progress or crashed) episode after the last commit."""
        return self._snap.partial_steps

    @property
    def schema(self) -> dict[str, dict[str, Any]]:
        stored = self.attrs.get("schema")
        if stored and self.key_map:
            stored = dict(sorted((self.key_map.get(k, k), v) for k, v in stored.items()))
        return stored or layout.schema_of(self._snap.data)

    @property
    def control_hz(self) -> float | None:
        return self.attrs.get("control_hz")

    @property
    def env_info(self) -> EnvInfo | None:
        """The env that recorded this dataset (name + config recreate the task), if stored."""
        return layout.env_info_from_dict(self.attrs.get("env"))

    @property
    def format_version(self) -> int:
        return self._root.metadata.zarr_format

    def array(self, key: str) -> zarr.Array:
        """The lazy zarr array data/<key> (rows past n_steps are uncommitted)."""
        if key not in self._snap.data:
            raise DatasetError(f"{self.path}: no key {key!r}; keys are {self.keys}")
        return self._snap.data[key]

    # --- episodes ---------------------------------------------------------
    def episode_slice(self, i: int) -> slice:
        if not -self.n_episodes <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range: {self.path} has {self.n_episodes} committed episodes")
        i %= self.n_episodes
        start = int(self.episode_ends[i - 1]) if i > 0 else 0
        return slice(start, int(self.episode_ends[i]))

    def get_episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        s = self.episode_slice(i)
        return {k: self.array(k)[s] for k in (keys or self.keys)}

    def load(self, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All committed steps of `keys` as in-memory (N, ...) numpy arrays."""
        return {k: self.array(k)[: self.n_steps] for k in (keys or self.keys)}

    def episode_meta(self, i: int) -> dict[str, Any]:
        s = self.episode_slice(i)
        i %= self.n_episodes
        out: dict[str, Any] = {name: fill for name, (_, fill) in META_FIELDS.items()}
        out["length"] = s.stop - s.start
        out["source"] = "unknown"
        cats = self.attrs.get("categories", {})
        for name, arr in self._snap.meta.items():
            v = arr[i].item()
            if name in cats:
                v = cats[name][v] if 0 <= v < len(cats[name]) else "unknown"
            out[name] = v
        return out

    def meta_array(self, name: str) -> np.ndarray:
        """(E,) per-episode metadata (e.g. 'success') for all committed episodes."""
        if name not in self._snap.meta:
            raise DatasetError(f"{self.path}: no per-episode metadata {name!r}; have {sorted(self._snap.meta)}")
        return self._snap.meta[name][: self.n_episodes]

    def partial_episode(self) -> dict[str, np.ndarray]:
        """The uncommitted tail (e.g. the episode a crash interrupted), for inspection or recovery."""
        return {k: a[self.n_steps : self.n_steps + self.partial_steps] for k, a in self._snap.data.items()}

    def __repr__(self) -> str:
        return (f"EpisodeDataset({str(self.path)!r}, episodes={self.n_episodes}, steps={self.n_steps}, "
                f"keys={self.keys}, partial_steps={self.partial_steps})")
