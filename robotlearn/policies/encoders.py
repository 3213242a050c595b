"""Observation encoders: state MLP, a small ResNet-style conv net per camera, and their fusion.

Plain torch (no torchvision on CPU here). GroupNorm instead of BatchNorm so
features do not depend on batch statistics (batch 1 at act() time, EMA copies);
random-shift augmentation (DrQ) is the one image augmentation that reliably
helps small-data visuomotor BC.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY
from robotlearn.policies.config import EncoderConfig


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.Mish()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class RandomShift(nn.Module):
    """Pad by `pad` pixels (edge replicate) and crop back at a random offset per image; identity in eval."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        if not self.training or self.pad == 0:
            return x
        n, c, h, w = x.shape
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="replicate")
        dy = torch.randint(0, 2 * p + 1, (n, 1), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
        cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(c, device=x.device)[None, :, None, None]
        return x[batch, chans, rows, cols]


def _groups(channels: int) -> int:
    return max(1, min(8, channels // 4))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(_groups(c_out), c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """Feature map -> K expected (x, y) keypoint positions: keeps *where* things are, which pooling throws away."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, 2K)
        n, _, h, w = x.shape
        attn = self.proj(x).flatten(2).softmax(-1)  # (N, K, H*W)
        ys = torch.linspace(-1, 1, h, device=x.device)
        xs = torch.linspace(-1, 1, w, device=x.device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        ex = (attn * grid_x.reshape(1, 1, -1)).sum(-1)
        ey = (attn * grid_y.reshape(1, 1, -1)).sum(-1)
        return torch.cat([ex, ey], dim=-1)


class ConvEncoder(nn.Module):
    """uint8-range image in [-1, 1] (N, 3, H, W) -> (N, 2K) keypoint features. Stem /2, two residual stages /2."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, 2, 1, bias=False),
            nn.GroupNorm(_groups(c), c),
            nn.ReLU(),
            ResBlock(c, c, 1),
            ResBlock(c, 2 * c, 2),
            ResBlock(2 * c, 2 * c, 1),
        )
        self.pool = SpatialSoftmax(2 * c, keypoints)
        self.out_dim = 2 * keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.net(x))


class ObsEncoder(nn.Module):
    """Dict of (B, T, ...) observations -> (B, T, F): state MLP features ++ one conv encoder per camera.

    `state` is expected already normalised; images arrive as uint8 (B, T, H, W, 3).
    """

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], cfg: EncoderConfig) -> None:
        super().__init__()
        self.state_key = STATE_KEY if STATE_KEY in obs_shapes else None
        self.image_keys = sorted(k for k in obs_shapes if k.startswith(IMAGE_PREFIX))
        unknown = set(obs_shapes) - {STATE_KEY, *self.image_keys}
        if unknown:
            raise ValueError(f"ObsEncoder: unsupported observation keys {sorted(unknown)} (expected 'state', 'images/<cam>')")
        if not self.state_key and not self.image_keys:
            raise ValueError("ObsEncoder: no observation keys to encode")
        self.out_dim = 0
        if self.state_key:
            self.state_mlp = mlp(obs_shapes[STATE_KEY][0], cfg.state_hidden, cfg.state_features)
            self.out_dim += cfg.state_features
        self.shift = RandomShift(cfg.random_shift)
        n_nets = (1 if cfg.share_cameras else len(self.image_keys)) if self.image_keys else 0
        self.cams = nn.ModuleList(ConvEncoder(cfg.image_channels, cfg.image_keypoints) for _ in range(n_nets))
        self.out_dim += len(self.image_keys) * 2 * cfg.image_keypoints

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = []
        if self.state_key:
            feats.append(self.state_mlp(obs[self.state_key]))
        for i, key in enumerate(self.image_keys):
            img = obs[key]  # (B, T, H, W, 3) uint8
            b, t = img.shape[:2]
            x = img.reshape(b * t, *img.shape[2:]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            net = self.cams[0 if len(self.cams) == 1 else i]
            feats.append(net(self.shift(x)).reshape(b, t, -1))
        return torch.cat(feats, dim=-1)
