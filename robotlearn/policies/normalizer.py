"""Per-key affine normalisation with statistics stored as buffers.

Stats are computed once from the dataset and live inside the model's state
dict, so they ship in the same safetensors file as the weights and a loaded
checkpoint normalises exactly as it did in training.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

_EPS_RANGE = 1e-4  # a dimension that barely moves is centred, not blown up


def _buf(key: str) -> str:
    return key.replace("/", "__").replace(".", "_")


def affine_stats(x: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """x (N, D) -> (offset, scale) with x_norm = (x - offset) * scale."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError("cannot compute normalisation stats: data is empty or has NaN/inf values")
    if mode == "limits":  # [min, max] -> [-1, 1]
        lo, hi = x.min(0), x.max(0)
        rng = hi - lo
        flat = rng < _EPS_RANGE
        offset = np.where(flat, lo, (lo + hi) / 2)
        scale = np.where(flat, 1.0, 2.0 / np.maximum(rng, _EPS_RANGE))
    elif mode == "gaussian":
        std = x.std(0)
        offset, scale = x.mean(0), 1.0 / np.maximum(std, _EPS_RANGE)
    else:
        raise ValueError(f"unknown normalisation mode {mode!r}: expected 'limits' or 'gaussian'")
    return offset.astype(np.float32), scale.astype(np.float32)


class Normalizer(nn.Module):
    """Holds (offset, scale) per key for flat float features (state, action)."""

    def __init__(self, dims: dict[str, int]) -> None:
        super().__init__()
        self.dims = dict(dims)
        for key, d in self.dims.items():
            self.register_buffer(f"{_buf(key)}_offset", torch.zeros(d))
            self.register_buffer(f"{_buf(key)}_scale", torch.ones(d))

    def set_stats(self, key: str, offset: np.ndarray, scale: np.ndarray) -> None:
        getattr(self, f"{_buf(key)}_offset").copy_(torch.as_tensor(offset))
        getattr(self, f"{_buf(key)}_scale").copy_(torch.as_tensor(scale))

    def fit(self, data: dict[str, np.ndarray], modes: dict[str, str]) -> "Normalizer":
        for key in self.dims:
            if key not in data:
                raise KeyError(f"normaliser needs data for {key!r}; got keys {sorted(data)}")
            self.set_stats(key, *affine_stats(data[key], modes[key]))
        return self

    def _get(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"{_buf(key)}_offset"), getattr(self, f"{_buf(key)}_scale")

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset, scale = self._get(key)
        return (x - offset) * scale

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        offset, scale = self._get(key)
        return x / scale + offset

    def stats(self) -> dict[str, dict[str, list[float]]]:
        """Human-readable copy for config.json (the buffers remain the source of truth)."""
        return {k: {"offset": self._get(k)[0].tolist(), "scale": self._get(k)[1].tolist()} for k in self.dims}
