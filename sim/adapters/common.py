"""Helpers shared by the adapters: action rescaling and observation flattening."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from gymnasium import spaces

from robotlearn.envs import ActionSpec


class BoxRescaler:
    """Maps the normalised [-1, 1] action to a backend's native [low, high] box."""

    def __init__(self, low, high) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high))):
            raise ValueError(f"cannot normalise an unbounded action space: low={self.low}, high={self.high}")

    def __call__(self, action: np.ndarray) -> np.ndarray:
        return self.low + (np.asarray(action, np.float64) + 1.0) * 0.5 * (self.high - self.low)

    def action_spec(self, kind: str, names=None, units=()) -> ActionSpec:
        n = self.low.shape[0]
        return ActionSpec(kind=kind, names=tuple(names or (f"a{i}" for i in range(n))),
                          low=tuple(float(x) for x in self.low), high=tuple(float(x) for x in self.high),
                          units=tuple(units))


def normalised_box(n: int) -> spaces.Box:
    return spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)


def flatten_obs(obs, keys: list[str] | None = None) -> np.ndarray:
    """Concatenate (nested) dict / array observations into one float32 vector, keys in order."""
    if isinstance(obs, Mapping):
        keys = list(obs.keys()) if keys is None else keys
        parts = [flatten_obs(obs[k]) for k in keys]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.asarray(obs, dtype=np.float32).ravel()


def seed_from(rng: np.random.Generator, seed: int | None) -> int:
    """The seed to hand a backend's own RNG: `seed` if given, else one drawn from the env RNG."""
    return int(seed) if seed is not None else int(rng.integers(2**31 - 1))
