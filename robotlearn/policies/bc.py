"""Behaviour cloning with action chunks: n_obs observations -> `horizon` future actions in one shot.

Predicting a chunk (ACT, Zhao et al. 2023) instead of one action reduces
compounding error and copes with the pauses of human/scripted demos; executing
`n_action_steps` of it open-loop (or temporally ensembling) keeps motion smooth.
Heads: an MLP over the flattened history (default), or a small ACT-style
transformer decoder whose learned action queries attend to the obs tokens.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robotlearn.policies.chunked import ACTION_KEY, ChunkedPolicy
from robotlearn.policies.config import BCConfig, PolicyConfig
from robotlearn.policies.encoders import mlp


class TransformerHead(nn.Module):
    """(B, n_obs, F) obs tokens -> (B, horizon, A) via `horizon` learned queries and a transformer decoder."""

    def __init__(self, feat_dim: int, n_obs: int, horizon: int, action_dim: int, cfg: BCConfig) -> None:
        super().__init__()
        self.obs_proj = nn.Linear(feat_dim, cfg.d_model)
        self.obs_pos = nn.Parameter(torch.zeros(1, n_obs, cfg.d_model))
        self.queries = nn.Parameter(torch.randn(1, horizon, cfg.d_model) * 0.02)
        layer = nn.TransformerDecoderLayer(
            cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.n_layers)
        self.out = nn.Linear(cfg.d_model, action_dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        memory = self.obs_proj(feats) + self.obs_pos  # (B, n_obs, d)
        q = self.queries.expand(len(feats), -1, -1)  # (B, H, d)
        return self.out(self.decoder(q, memory))  # (B, H, A)


class BCPolicy(ChunkedPolicy):
    kind = "bc"

    def __init__(self, cfg: PolicyConfig, obs_shapes: dict[str, tuple[int, ...]], action_dim: int) -> None:
        super().__init__(cfg, obs_shapes, action_dim)
        feat = self.encoder.out_dim
        if cfg.bc.head == "mlp":
            self.head: nn.Module = mlp(self.n_obs * feat, cfg.bc.hidden, self.horizon * action_dim, cfg.bc.dropout)
        elif cfg.bc.head == "transformer":
            self.head = TransformerHead(feat, self.n_obs, self.horizon, action_dim, cfg.bc)
        else:
            raise ValueError(f"policy.bc.head={cfg.bc.head!r}: expected 'mlp' or 'transformer'")
        if cfg.bc.loss not in ("l1", "mse"):
            raise ValueError(f"policy.bc.loss={cfg.bc.loss!r}: expected 'l1' or 'mse'")

    def _forward(self, nobs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = self.encoder(nobs)  # (B, n_obs, F)
        if self.cfg.bc.head == "mlp":
            return self.head(feats.flatten(1)).view(len(feats), self.horizon, self.action_dim)
        return self.head(feats)

    def compute_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        pred = self._forward(self.normalize_obs(batch["obs"]))  # (B, H, A)
        target = self.normalizer.normalize(ACTION_KEY, batch[ACTION_KEY].float())
        loss_fn = F.l1_loss if self.cfg.bc.loss == "l1" else F.mse_loss
        return loss_fn(pred, target)

    def _predict(self, nobs: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
        return self._forward(nobs)
