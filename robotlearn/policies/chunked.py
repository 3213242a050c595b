"""What BC and diffusion share: obs history, normalisation, chunk execution, temporal ensembling.

`ChunkedPolicy` implements the `BasePolicy` contract (robotlearn/policies/base.py)
on top of a model that maps `n_obs` observations to `horizon` actions starting
at the current step. Subclasses only define `compute_loss` (training) and
`_predict` (normalised obs -> normalised action chunk).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY
from robotlearn.policies.config import PolicyConfig
from robotlearn.policies.encoders import ObsEncoder
from robotlearn.policies.normalizer import Normalizer

ACTION_KEY = "action"


class ChunkedPolicy(nn.Module):
    kind = ""

    def __init__(self, cfg: PolicyConfig, obs_shapes: dict[str, tuple[int, ...]], action_dim: int) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.obs_shapes = {k: tuple(int(s) for s in v) for k, v in sorted(obs_shapes.items())}
        self.action_dim = int(action_dim)
        self.n_obs, self.horizon, self.n_action_steps = cfg.n_obs, cfg.horizon, cfg.n_action_steps
        # With temporal ensembling the policy is queried every step and returns one blended action.
        self.action_chunk_size = 1 if cfg.temporal_ensemble is not None else cfg.n_action_steps
        dims = {ACTION_KEY: self.action_dim}
        if STATE_KEY in self.obs_shapes:
            dims[STATE_KEY] = self.obs_shapes[STATE_KEY][0]
        self.normalizer = Normalizer(dims)
        self.encoder = ObsEncoder(self.obs_shapes, cfg.encoder)
        self.reset()

    # --- training -------------------------------------------------------
    def fit_normalizer(self, data: dict[str, np.ndarray]) -> None:
        """`data` holds flat arrays over the whole dataset: state (N, D), action (N, A)."""
        modes = {ACTION_KEY: "limits", STATE_KEY: self.cfg.normalization}
        self.normalizer.fit(data, {k: modes[k] for k in self.normalizer.dims})

    def compute_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """batch: {"obs": {key: (B, n_obs, ...)}, "action": (B, horizon, A)} in env units."""
        raise NotImplementedError

    def _predict(self, nobs: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
        """Normalised obs (B, n_obs, ...) -> normalised action chunk (B, horizon, A)."""
        raise NotImplementedError

    # --- shared feature path ----------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {k: obs[k] for k in self.obs_shapes}
        if STATE_KEY in out:
            out[STATE_KEY] = self.normalizer.normalize(STATE_KEY, out[STATE_KEY].float())
        return out

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw obs batch (B, n_obs, ...) -> (B, n_obs * F) features (what the heads condition on)."""
        return self.encoder(self.normalize_obs(obs)).flatten(1)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Raw obs batch (B, n_obs, ...) -> (B, horizon, A) actions in the env's [-1, 1] space."""
        naction = self._predict(self.normalize_obs(obs), generator)
        return self.normalizer.unnormalize(ACTION_KEY, naction).clamp(-1.0, 1.0)

    # --- BasePolicy contract ------------------------------------------------
    def reset(self) -> None:
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs)
        self._chunks: deque[tuple[int, np.ndarray]] = deque()  # (step predicted at, (H, A) chunk)
        self._t = 0
        self._generator: torch.Generator | None = None  # None: torch's global generator (unseeded episodes)

    def seed_episode(self, seed: int) -> None:
        """Draw this episode's sampling noise (diffusion) from `seed` alone (base.py: seed_episode)."""
        self._generator = torch.Generator().manual_seed(int(seed))

    def check_obs(self, obs: dict[str, np.ndarray]) -> None:
        if not isinstance(obs, Mapping):  # e.g. the (obs, info) pair env.reset() returns, passed whole
            raise TypeError(f"{self.kind} policy: the observation must be a dict of arrays, got {type(obs).__name__}")
        for key, shape in self.obs_shapes.items():
            if key not in obs:
                raise KeyError(f"{self.kind} policy needs observation {key!r}; got keys {sorted(obs)}")
            got = tuple(np.shape(obs[key]))
            if got != shape:
                raise ValueError(f"{self.kind} policy: observation {key!r} has shape {got}, trained on {shape}")
            if key.startswith(IMAGE_PREFIX):
                if np.asarray(obs[key]).dtype != np.uint8:
                    raise ValueError(f"{self.kind} policy: image {key!r} must be uint8 HxWx3, got {np.asarray(obs[key]).dtype}")
                continue
            if not np.all(np.isfinite(obs[key])):
                raise ValueError(f"{self.kind} policy: observation {key!r} has NaN/inf values")

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], generator: torch.Generator | None = None) -> np.ndarray:
        """One unbatched observation -> (action_chunk_size, A) float32 chunk in [-1, 1]."""
        self.check_obs(obs)
        self._history.append({k: np.asarray(obs[k]) for k in self.obs_shapes})
        hist = list(self._history)
        hist = [hist[0]] * (self.n_obs - len(hist)) + hist  # edge-pad at episode start, as in training
        batch = {k: torch.as_tensor(np.stack([h[k] for h in hist]))[None].to(self.device) for k in self.obs_shapes}
        was_training = self.training
        self.eval()
        chunk = self.predict_chunk(batch, self._generator if generator is None else generator)[0].float().cpu().numpy()  # (H, A)
        self.train(was_training)
        if self.cfg.temporal_ensemble is None:
            return chunk[: self.n_action_steps].astype(np.float32)
        return self._ensemble(chunk)

    def _ensemble(self, chunk: np.ndarray) -> np.ndarray:
        """ACT temporal ensembling: blend every earlier chunk's prediction for this step, oldest weighted most."""
        self._chunks.append((self._t, chunk))
        while self._t - self._chunks[0][0] >= self.horizon:
            self._chunks.popleft()
        preds = np.stack([c[self._t - s] for s, c in self._chunks])  # (n, A), oldest first
        w = np.exp(-self.cfg.temporal_ensemble * np.arange(len(preds)))[:, None]
        self._t += 1
        return ((w * preds).sum(0) / w.sum())[None].astype(np.float32)
