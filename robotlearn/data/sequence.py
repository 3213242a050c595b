"""`SequenceDataset`: windows for BC / diffusion training (observation history + action chunk).

A sample is anchored at step t of an episode [s, e):
    obs keys    -> rows t-n_obs+1 .. t        (n_obs, ...)   before s: repeat row s
    action keys -> rows t .. t+horizon-1      (horizon, ...) after e-1: repeat row e-1
    action_is_pad -> (horizon,) True where the action row was padded
Every step of every episode is an anchor, so each recorded action is a target.
Windows never cross an episode boundary. `keys` (or `obs_keys`) picks a subset;
`episodes` is a list of episode indices or an int (the first N). `in_memory=True` loads the arrays once
(fast, vectorised `get_batch`); `in_memory=False` reads each window from zarr.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from robotlearn.data.keys import default_obs_keys
from robotlearn.data.layout import DatasetError
from robotlearn.data.reader import EpisodeDataset


def window_indices(episode_ends: np.ndarray, episodes: np.ndarray | int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchor, episode_start, episode_end) per sample, for every step of the selected episodes."""
    ends = np.asarray(episode_ends, np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    if episodes is None:
        sel = np.arange(len(ends))
    elif np.ndim(episodes) == 0:  # the first N episodes
        sel = np.arange(min(int(episodes), len(ends)))
    else:
        sel = np.asarray(episodes, np.int64)
    if len(sel) and (sel.min() < -len(ends) or sel.max() >= len(ends)):
        raise IndexError(f"episodes {sel.tolist()} out of range for {len(ends)} episodes")
    lengths = ends[sel] - starts[sel]
    ep_start = np.repeat(starts[sel], lengths)
    ep_end = np.repeat(ends[sel], lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return ep_start + offsets, ep_start, ep_end


class SequenceDataset(Dataset):
    def __init__(self, source: EpisodeDataset | str | Path, n_obs: int = 2, horizon: int = 16,
                 obs_keys: list[str] | None = None, action_keys: list[str] | tuple[str, ...] = ("action",),
                 episodes: list[int] | int | None = None, in_memory: bool = True, keys: list[str] | None = None) -> None:
        ds = source if isinstance(source, EpisodeDataset) else EpisodeDataset(source)
        if keys is not None:  # one list: action keys among it are chunked, the rest are observations
            obs_keys = [k for k in keys if k not in action_keys]
            action_keys = [k for k in action_keys if k in keys]
        if obs_keys is None:
            obs_keys = default_obs_keys(ds.keys)
        keys = [*obs_keys, *action_keys]
        missing = [k for k in keys if k not in ds.keys]
        if missing:
            raise DatasetError(f"{ds.path}: SequenceDataset keys {missing} are not in the dataset (keys: {ds.keys})")
        arrays = ds.load(keys) if in_memory else {k: ds.array(k) for k in keys}
        self._init(arrays, ds.episode_ends, n_obs, horizon, list(obs_keys), list(action_keys), episodes, in_memory)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], episode_ends: np.ndarray, n_obs: int = 2,
                    horizon: int = 16, obs_keys: list[str] | None = None,
                    action_keys: list[str] | tuple[str, ...] = ("action",), episodes: list[int] | None = None) -> "SequenceDataset":
        """Windows over in-memory concatenated arrays (e.g. EpisodeDataset.load())."""
        self = cls.__new__(cls)
        obs_keys = obs_keys if obs_keys is not None else [k for k in arrays if k not in action_keys]
        self._init(arrays, np.asarray(episode_ends), n_obs, horizon, list(obs_keys), list(action_keys), episodes, True)
        return self

    def _init(self, arrays, episode_ends, n_obs, horizon, obs_keys, action_keys, episodes, in_memory) -> None:
        if n_obs < 1 or horizon < 1:
            raise ValueError(f"n_obs and horizon must be >= 1, got n_obs={n_obs}, horizon={horizon}")
        self.arrays, self.episode_ends = arrays, np.asarray(episode_ends, np.int64)
        self.n_obs, self.horizon = int(n_obs), int(horizon)
        self.obs_keys, self.action_keys, self.in_memory = obs_keys, action_keys, in_memory
        self.anchor, self.ep_start, self.ep_end = window_indices(self.episode_ends, episodes)
        self._obs_off = np.arange(-self.n_obs + 1, 1)  # (n_obs,)
        self._act_off = np.arange(self.horizon)  # (horizon,)

    def __len__(self) -> int:
        return len(self.anchor)

    def indices(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices for samples i: obs (B, n_obs), action (B, horizon), action_is_pad (B, horizon)."""
        a, s, e = self.anchor[i][:, None], self.ep_start[i][:, None], self.ep_end[i][:, None]
        obs = np.clip(a + self._obs_off, s, e - 1)
        raw = a + self._act_off
        return obs, np.minimum(raw, e - 1), raw > e - 1

    def get_batch(self, i: np.ndarray) -> dict[str, np.ndarray]:
        """Vectorised windows for sample indices i (B,): {obs key: (B, n_obs, ...), action key: (B, horizon, ...)}."""
        i = np.asarray(i, np.int64)
        obs, act, pad = self.indices(i)
        if self.in_memory:
            out = {k: self.arrays[k][obs] for k in self.obs_keys}
            out.update({k: self.arrays[k][act] for k in self.action_keys})
        else:  # per window and key, one contiguous zarr read of just the rows it needs
            out = {k: [] for k in [*self.obs_keys, *self.action_keys]}
            for b in range(len(i)):
                for keys, rows in ((self.obs_keys, obs[b]), (self.action_keys, act[b])):
                    lo, hi = int(rows[0]), int(rows[-1]) + 1
                    for k in keys:
                        out[k].append(self.arrays[k][lo:hi][rows - lo])
            out = {k: np.stack(v) for k, v in out.items()}
        out["action_is_pad"] = pad
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.get_batch(np.array([i]))
        return {k: torch.from_numpy(np.ascontiguousarray(v[0])) for k, v in batch.items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """DataLoader's batched fetch: one vectorised gather, then per-sample views for collate."""
        batch = {k: torch.from_numpy(v) for k, v in self.get_batch(np.asarray(indices)).items()}
        return [{k: v[j] for k, v in batch.items()} for j in range(len(indices))]
