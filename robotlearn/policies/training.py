"""Optimisation pieces shared by the train-bc CLI, the tests and the benchmark.

`Trainer.step(batch)` is one AdamW update (warmup + cosine LR, grad clipping)
plus an EMA update when the policy config asks for it; `eval_policy` is what
should be evaluated and saved (the EMA copy if there is one).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from robotlearn.policies.chunked import ChunkedPolicy
from robotlearn.policies.config import OptimConfig


class EMA:
    """Exponential moving average of a module's weights, decay warming up as (1+k)/(10+k) (diffusion_policy)."""

    def __init__(self, model: nn.Module, max_decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.max_decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
        self.updates += 1


def to_device(x: Any, device: torch.device | str) -> Any:
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    return torch.as_tensor(x).to(device)


class Trainer:
    def __init__(self, policy: ChunkedPolicy, cfg: OptimConfig, total_steps: int) -> None:
        self.policy, self.cfg = policy, cfg
        decay = [p for n, p in policy.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in policy.named_parameters() if p.ndim < 2]  # biases, norms
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
        )
        warm = max(1, cfg.warmup_steps)

        def lr_scale(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total_steps - warm))
            return 0.5 * (1.0 + math.cos(math.pi * progress))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_scale)
        self.ema = EMA(policy, cfg.ema_max_decay) if cfg.ema else None
        self.steps = 0

    @property
    def eval_policy(self) -> ChunkedPolicy:
        return self.ema.model if self.ema else self.policy  # type: ignore[return-value]

    def step(self, batch: dict[str, Any]) -> float:
        self.policy.train()
        loss = self.policy.compute_loss(to_device(batch, self.policy.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.steps}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.ema:
            self.ema.update(self.policy)
        self.steps += 1
        return float(loss.detach())
