"""In-memory n-step transitions for off-policy RL, and a ratio mixer (50/50 demo/online).

Everything a sample needs is precomputed when an episode is added: for each
stored step t, the slot of its bootstrap observation t+k, the discounted n-step
reward and the discount gamma^k * (1 - terminal). `sample` is then pure fancy
indexing, with no per-item Python.

n-step rule for an episode of L recorded steps (row t = obs_t, action_t, reward_t):
  terminated: every t is a transition; k = min(n, L - t); if t + k == L the
              return reached the terminal state, so discount = 0 (next/* is a
              placeholder copy of the last row and must be ignored).
  truncated:  the observation after the last row was never recorded, so t = L-1
              has no next observation and is never sampled; k = min(n, L-1-t).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from robotlearn.data.reader import EpisodeDataset


class TransitionBuffer:
    """Ring buffer of whole episodes; the oldest episodes are invalidated when overwritten."""

    def __init__(self, keys: list[str] | None = None, n_step: int = 3, gamma: float = 0.99,
                 capacity: int = 1_000_000) -> None:
        """keys: what to store and return (+ 'next/' twins); None = every key of the first episode added."""
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.keys = None if keys is None else [k for k in keys if k != "reward"]
        self.n_step, self.gamma, self.capacity = int(n_step), float(gamma), int(capacity)
        self._store: dict[str, np.ndarray] = {}
        self._next = np.zeros(capacity, np.int64)  # slot of the bootstrap row t+k
        self._ret = np.zeros(capacity, np.float32)  # sum_{i<k} gamma^i r_{t+i}
        self._disc = np.zeros(capacity, np.float32)  # gamma^k * (1 - terminal)
        self._valid = np.zeros(capacity, bool)
        self._episode = np.full(capacity, -1, np.int64)
        self._valid_idx = np.zeros(0, np.int64)
        self._dirty = False
        self._pos = 0
        self.n_episodes = 0
        self.n_added_steps = 0

    def __len__(self) -> int:
        """Number of sampleable transitions."""
        return int(self._valid.sum())

    def _allocate(self, arrays: dict[str, np.ndarray]) -> None:
        for k in self.keys:
            a = np.asarray(arrays[k])
            self._store[k] = np.zeros((self.capacity, *a.shape[1:]), a.dtype)

    def add_episode(self, arrays: dict[str, np.ndarray], terminated: bool) -> None:
        """arrays: {key: (L, ...)} for every key in `keys`, plus 'reward' (L,)."""
        if self.keys is None:
            self.keys = sorted(k for k in arrays if k != "reward")
        missing = [k for k in [*self.keys, "reward"] if k not in arrays]
        if missing:
            raise KeyError(f"TransitionBuffer.add_episode: missing keys {missing} (have {sorted(arrays)})")
        L = len(arrays["reward"])
        bad = {k: len(arrays[k]) for k in self.keys if len(arrays[k]) != L}
        if bad:
            raise ValueError(f"TransitionBuffer.add_episode: lengths {bad} differ from reward length {L}")
        if not 0 < L <= self.capacity:
            raise ValueError(f"TransitionBuffer.add_episode: episode of {L} steps for capacity {self.capacity}")
        if not self._store:
            self._allocate(arrays)
        slots = (self._pos + np.arange(L)) % self.capacity
        overwritten = np.unique(self._episode[slots])
        overwritten = overwritten[overwritten >= 0]
        if overwritten.size:  # drop whole episodes we cut into: their n-step targets would be wrong
            self._valid[np.isin(self._episode, overwritten)] = False
        for k in self.keys:
            a = np.asarray(arrays[k])
            if a.shape[1:] != self._store[k].shape[1:]:
                raise ValueError(f"TransitionBuffer.add_episode: key {k!r} has per-step shape {a.shape[1:]}, "
                                 f"buffer holds {self._store[k].shape[1:]}")
            self._store[k][slots] = a

        n, g = self.n_step, self.gamma
        t = np.arange(L)
        horizon = L if terminated else L - 1  # last index whose successor exists (or is terminal)
        k = np.minimum(n, horizon - t)  # (L,) actual steps; <= 0 means no transition
        r = np.concatenate([np.asarray(arrays["reward"], np.float64), np.zeros(n)])
        i = np.arange(n)
        ret = (g ** i * r[t[:, None] + i] * (i < k[:, None])).sum(1)  # (L, n) -> (L,)
        terminal = terminated & (t + k == L)
        self._ret[slots] = ret
        self._disc[slots] = np.where(terminal, 0.0, g ** np.maximum(k, 0))
        self._next[slots] = slots[np.minimum(t + np.maximum(k, 0), L - 1)]
        self._valid[slots] = k >= 1
        self._episode[slots] = self.n_episodes
        self._pos = (self._pos + L) % self.capacity
        self.n_episodes += 1
        self.n_added_steps += L
        self._dirty = True

    @classmethod
    def from_dataset(cls, ds: EpisodeDataset | str, keys: list[str] | None = None, n_step: int = 3,
                     gamma: float = 0.99, capacity: int | None = None) -> "TransitionBuffer":
        """Load every committed episode; `terminated` comes from the per-episode metadata."""
        ds = ds if isinstance(ds, EpisodeDataset) else EpisodeDataset(ds)
        if "reward" not in ds.keys:
            raise KeyError(f"{ds.path} has no 'reward' key; transitions need rewards (keys: {ds.keys})")
        keys = [k for k in (keys or ds.keys) if k != "reward"]
        buf = cls(keys, n_step=n_step, gamma=gamma, capacity=capacity or max(ds.n_steps, 1))
        data = ds.load([*keys, "reward"])
        terminated = ds.meta_array("terminated") if "terminated" in ds.meta_keys else np.zeros(ds.n_episodes, bool)
        start = 0
        for i, end in enumerate(ds.episode_ends):
            buf.add_episode({k: v[start:end] for k, v in data.items()}, terminated=bool(terminated[i]))
            start = int(end)
        return buf

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """{K: (B, ...), 'next/K': (B, ...), 'reward': (B,), 'discount': (B,)} uniformly over transitions."""
        if self._dirty:
            self._valid_idx = np.flatnonzero(self._valid)
            self._dirty = False
        if not len(self._valid_idx):
            raise ValueError("TransitionBuffer.sample: the buffer holds no sampleable transitions yet")
        idx = self._valid_idx[rng.integers(0, len(self._valid_idx), batch_size)]
        nxt = self._next[idx]
        out: dict[str, Any] = {}
        for k, store in self._store.items():
            out[k] = store[idx]
            out[f"next/{k}"] = store[nxt]
        out["reward"] = self._ret[idx]
        out["discount"] = self._disc[idx]
        return out


class MixedSampler:
    """Sample a batch from several buffers in fixed proportions, e.g. [(demos, 0.5), (online, 0.5)]."""

    def __init__(self, sources: list[tuple[TransitionBuffer, float]]) -> None:
        ratios = np.array([r for _, r in sources], np.float64)
        if not len(sources) or np.any(ratios < 0) or ratios.sum() <= 0:
            raise ValueError(f"MixedSampler: need buffers with non-negative ratios summing > 0, got {ratios.tolist()}")
        self.buffers = [b for b, _ in sources]
        self.ratios = ratios / ratios.sum()

    def counts(self, batch_size: int) -> np.ndarray:
        """Rows per buffer: rounded cumulative shares, so they always sum to batch_size."""
        edges = np.round(np.concatenate([[0.0], np.cumsum(self.ratios)]) * batch_size).astype(np.int64)
        return np.diff(edges)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        parts = [b.sample(int(c), rng) for b, c in zip(self.buffers, self.counts(batch_size)) if c > 0]
        keys = set(parts[0])
        for i, p in enumerate(parts[1:], 1):
            if set(p) != keys:
                raise KeyError(f"MixedSampler: buffer {i} yields keys {sorted(set(p) ^ keys)} that buffer 0 "
                               f"does not (or vice versa); give every buffer the same keys")
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class PooledSampler:
    """Several buffers sampled as one: rows split in proportion to their sizes (deterministic rounding), so
    a transition is as likely as in a single buffer holding them all. An empty buffer draws nothing."""

    def __init__(self, buffers: list[TransitionBuffer]) -> None:
        self.buffers = list(buffers)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        sizes = np.array([len(b) for b in self.buffers], np.float64)
        if sizes.sum() == 0:
            raise ValueError("PooledSampler.sample: none of the buffers holds sampleable transitions yet")
        counts = np.diff(np.round(np.concatenate([[0.0], np.cumsum(sizes / sizes.sum())]) * batch_size)).astype(int)
        parts = [b.sample(int(c), rng) for b, c in zip(self.buffers, counts) if c > 0]
        return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
