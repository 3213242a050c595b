"""Diffusion policy (Chi et al. 2023): denoise an action chunk conditioned on encoded observations.

A 1D temporal U-Net over the chunk (B, horizon, A) with FiLM conditioning on
[diffusion-step embedding ++ obs features]. Trained with diffusers'
DDPMScheduler (noise prediction), sampled with DDIMScheduler in few steps so it
is fast enough for control; multimodal demos stay multimodal instead of being
averaged as an L1/L2 BC head would.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from robotlearn.policies.chunked import ACTION_KEY, ChunkedPolicy
from robotlearn.policies.config import PolicyConfig


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
        x = t.float()[:, None] * freqs[None]
        return torch.cat([x.sin(), x.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, n_groups: int) -> None:
        super().__init__(nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.GroupNorm(n_groups, c_out), nn.Mish())


class CondResBlock1D(nn.Module):
    """Two conv blocks; the condition sets a per-channel scale and bias (FiLM) between them."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, k: int, n_groups: int) -> None:
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, k, n_groups)
        self.block2 = Conv1dBlock(c_out, c_out, k, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # x (B, C, T), cond (B, D)
        scale, bias = self.film(cond)[:, :, None].chunk(2, dim=1)  # (B, C_out, 1) each
        y = self.block1(x) * scale + bias
        return self.block2(y) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """(B, T, A) noisy chunk, (B,) timestep, (B, C) obs features -> (B, T, A) predicted noise."""

    def __init__(
        self, action_dim: int, cond_dim: int, down_dims: list[int], k: int, n_groups: int, step_dim: int
    ) -> None:
        super().__init__()
        self.step_emb = nn.Sequential(
            SinusoidalPosEmb(step_dim), nn.Linear(step_dim, 4 * step_dim), nn.Mish(), nn.Linear(4 * step_dim, step_dim)
        )
        cdim = step_dim + cond_dim
        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:]))

        def res(a: int, b: int) -> CondResBlock1D:
            return CondResBlock1D(a, b, cdim, k, n_groups)

        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(nn.ModuleList([res(a, b), res(b, b), nn.Identity() if last else nn.Conv1d(b, b, 3, 2, 1)]))
        self.mid = nn.ModuleList([res(down_dims[-1], down_dims[-1]), res(down_dims[-1], down_dims[-1])])
        self.up = nn.ModuleList()
        for a, b in reversed(pairs[1:]):  # one upsample per downsample
            self.up.append(nn.ModuleList([res(2 * b, a), res(a, a), nn.ConvTranspose1d(a, a, 4, 2, 1)]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], k, n_groups), nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = torch.cat([self.step_emb(t.expand(len(x))), cond], dim=-1)
        h = x.transpose(1, 2)  # (B, A, T)
        skips = []
        for r1, r2, down in self.down:
            h = r2(r1(h, c), c)
            skips.append(h)
            h = down(h)
        for r in self.mid:
            h = r(h, c)
        for r1, r2, up in self.up:
            h = r2(r1(torch.cat([h, skips.pop()], dim=1), c), c)
            h = up(h)
        return self.final(h).transpose(1, 2)


class DiffusionPolicy(ChunkedPolicy):
    kind = "diffusion"

    def __init__(self, cfg: PolicyConfig, obs_shapes: dict[str, tuple[int, ...]], action_dim: int) -> None:
        super().__init__(cfg, obs_shapes, action_dim)
        from diffusers import DDIMScheduler, DDPMScheduler  # slow import (seconds): only when a diffusion policy is built

        d = cfg.diffusion
        self.unet = ConditionalUnet1D(
            action_dim, self.n_obs * self.encoder.out_dim, d.down_dims, d.kernel_size, d.n_groups, d.step_embed_dim
        )
        common = dict(
            num_train_timesteps=d.num_train_timesteps,
            beta_schedule=d.beta_schedule,
            prediction_type=d.prediction_type,
            clip_sample=True,  # actions are normalised to [-1, 1]
        )
        self.train_scheduler = DDPMScheduler(**common)
        self.sample_scheduler = DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
        self.num_inference_steps = d.num_inference_steps

    def compute_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        cond = self.encoder(self.normalize_obs(batch["obs"])).flatten(1)  # (B, n_obs * F)
        x0 = self.normalizer.normalize(ACTION_KEY, batch[ACTION_KEY].float())  # (B, H, A)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
        xt = self.train_scheduler.add_noise(x0, noise, t)
        pred = self.unet(xt, t, cond)
        target = noise if self.cfg.diffusion.prediction_type == "epsilon" else x0
        return F.mse_loss(pred, target)

    def _predict(self, nobs: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
        cond = self.encoder(nobs).flatten(1)
        shape = (len(cond), self.horizon, self.action_dim)
        # Draw noise on CPU with the (CPU) generator so a seed gives the same chunk on any device.
        x = torch.randn(shape, generator=generator).to(cond.device)
        sched = self.sample_scheduler
        sched.set_timesteps(self.num_inference_steps)
        for t in sched.timesteps:
            eps = self.unet(x, t.to(cond.device), cond)
            x = sched.step(eps, t, x, eta=0.0).prev_sample  # eta=0: deterministic DDIM given the start noise
        return x
