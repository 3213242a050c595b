"""Residual off-policy RL on a frozen base policy (the ResFiT recipe), top to bottom.

A frozen base proposes `a_base`; a small deterministic TD3-style actor adds a
bounded correction, `a = clip(a_base + tanh(f(s, a_base)) * residual_scale, -1, 1)`.
Its last layer starts at zero, so at step 0 the agent *is* the base. An ensemble
of LayerNorm critics scores the executed action; the TD target takes the min
over a random pair of target critics (REDQ), the actor maximises the ensemble
mean. With a zero base and `residual_scale=1` the same code is RLPD-style RL
from scratch (the baseline).

Batches are dicts of tensors (B = batch, S = state dim, A = action dim):
  state (B, S), base_action (B, A), action (B, A) executed, reward (B,) n-step
  discounted return, discount (B,) gamma^n or 0 at a terminal, next_state (B, S),
  next_base_action (B, A) the base's action at the bootstrap state.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file

from robotlearn.atomic_dir import atomic_dir, readable_dir


@dataclass
class ResidualConfig:
    """Every knob of the recipe. Noise values are in normalised action units unless noted."""

    residual_scale: float = 0.1  # max |residual| per action dim: tanh output x this (ResFiT 0.1; 1.0 = from scratch)
    # Action dims the residual leaves to the base (indices into the action): no residual, no exploration or
    # warm-up noise there. E.g. [3], the sim Panda's gripper: HIL-SERL's insertion policies do not command
    # the gripper, and noise on it makes a grasp-and-insert base miss its grasp (docs/results/peg_insert.md).
    base_only_dims: tuple[int, ...] = ()
    num_critics: int = 10  # critic ensemble size (ResFiT/RLPD 10)
    num_min: int = 2  # TD target = min over this many randomly chosen target critics (REDQ)
    n_step: int = 3  # n-step returns (ResFiT 3; 5 with gamma 0.995 on long tasks)
    gamma: float = 0.99  # discount per env step
    utd: int = 4  # critic updates per env step collected (update-to-data ratio)
    actor_delay: int = 2  # one actor (and target) update per this many critic updates (TD3 delay)
    tau: float = 0.005  # Polyak factor for critic and actor targets
    # Target-policy smoothing, as FRACTIONS OF residual_scale so the noise never swamps
    # the residual range (0.02 / 0.03 absolute at scale 0.1; TD3-like 0.2 / 0.3 at scale 1).
    target_noise: float = 0.2  # std of the noise added to the target residual, x residual_scale
    target_noise_clip: float = 0.3  # that noise is clipped to +- this, x residual_scale
    explore_std: float = 0.05  # std of Gaussian noise on the residual while collecting (absolute, ResFiT 0.05)
    # Correlation of that noise from one step to the next (AR(1), same std; reset each episode).
    # 0 = white noise (ResFiT). Near 1 the noise acts as a slowly drifting push, which explores
    # corrections that only pay off when held for many steps (e.g. the last cm to a target).
    explore_corr: float = 0.0
    # Actor Adam lr. ResFiT: 1e-6..5e-6 over 100k+ steps; 1e-4 lets the residual move within a 5-50k-step
    # run, while the zero-init and the tanh x residual_scale bound keep it near the base.
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4  # critic Adam lr (ResFiT 1e-4; 3e-4 converges faster on short runs)
    batch_size: int = 256  # transitions per update (half demo, half online at demo_ratio 0.5)
    hidden_dim: int = 256  # width of actor and critic hidden layers
    num_layers: int = 2  # hidden layers in actor and critics (Linear-LayerNorm-ReLU each)
    grad_clip: float = 1.0  # max global grad norm for actor and critic
    warmup_env_steps: int = 1000  # first env steps (per run) act with base + uniform noise, no residual
    warmup_noise: float = 0.2  # half-width of that uniform noise (ResFiT +-0.2)
    critic_warmup_updates: int = 500  # critic-only updates before the first actor update
    # Actor loss += this x mean((residual / residual_scale)^2). Adam steps are sign-like, so a weak but
    # consistent critic slope (early, sparse rewards) drives the residual to its bound; the penalty makes
    # it grow only as far as the critic's slope pays for. 0 = ResFiT (which uses a 1e-6..5e-6 actor lr).
    residual_penalty: float = 0.0
    # How the actor and critics scale each state dim, from the demos' states: "std": (s - mean) / std, clipped
    # to +-10 (ResFiT). "robust": (s - median) / (1.4826 MAD), then symlog (sign(x) log(1 + |x|)): a dim that
    # sits near one value most of the time and far from it some of the time (a peg's offset from its hole:
    # std 3-9 cm, MAD 3 mm) keeps millimetre resolution near that value, and far values stay ordered.
    state_norm: str = "std"
    demo_ratio: float = 0.5  # fraction of each batch drawn from the (relabelled) demo buffer
    buffer_size: int = 300_000  # max online transitions kept in memory (the zarr log keeps all)
    # Learner matmul precision: "fp32", or "bf16" = autocast (bf16 matmuls, fp32 weights, optimiser and
    # losses). bf16 roughly doubles matmul throughput on GPUs and on CPUs with AVX512-BF16/AMX; actors
    # always run fp32.
    precision: str = "fp32"
    # What the actor and critics read besides `state`: "none" (state only), or "base": the frozen image encoder
    # of a BC/diffusion checkpoint, run on the actor once per step; its features travel in the episode and the
    # learner trains on [state, features] (robotlearn/rl/features.py). For envs whose state lacks the object.
    # "drq" (for GPUs): a conv encoder per camera trained through the critic loss with random-shift augmentation
    # (DrQ-v2), the actor reading its features detached; its weights travel to the actors with the actor's.
    encoder: str = "none"
    encoder_checkpoint: str = ""  # encoder=base: the checkpoint whose encoder to use ("" = the base's own)
    drq_channels: int = 32  # encoder=drq: width of the first conv stage (doubles once)
    drq_keypoints: int = 32  # encoder=drq: spatial-softmax keypoints per camera -> 2x this features each
    drq_shift: int = 4  # encoder=drq: random-shift augmentation, pixels of edge padding

    def __post_init__(self) -> None:
        """Reject bad values where the config is made, so learner and actor processes both fail at start."""
        if self.encoder not in ("none", "base", "drq"):
            raise ValueError(f"rl.encoder must be 'none', 'base' or 'drq', got {self.encoder!r}")
        if self.state_norm not in ("std", "robust"):
            raise ValueError(f"rl.state_norm must be 'std' or 'robust', got {self.state_norm!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"rl.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        from robotlearn.config import check_ranges

        check_ranges(self, "rl", residual_scale="(0, inf)", num_critics="[1, inf)", num_min="[1, inf)",
                     n_step="[1, inf)", gamma="[0, 1)", utd="[1, inf)", actor_delay="[1, inf)", tau="(0, 1]",
                     target_noise="[0, inf)", target_noise_clip="[0, inf)", explore_std="[0, inf)",
                     explore_corr="[0, 1)", actor_lr="(0, inf)", critic_lr="(0, inf)", batch_size="[1, inf)",
                     hidden_dim="[1, inf)", num_layers="[1, inf)", grad_clip="(0, inf)", warmup_env_steps="[0, inf)",
                     warmup_noise="[0, inf)", critic_warmup_updates="[0, inf)", residual_penalty="[0, inf)",
                     demo_ratio="[0, 1]", buffer_size="[1, inf)", drq_channels="[1, inf)", drq_keypoints="[1, inf)",
                     drq_shift="[0, inf)")
        self.base_only_dims = tuple(int(i) for i in self.base_only_dims)  # from YAML or OmegaConf: a list
        if any(i < 0 for i in self.base_only_dims):
            raise ValueError(f"rl.base_only_dims must be action indices >= 0, got {list(self.base_only_dims)}")
        if self.num_min > self.num_critics:
            raise ValueError(f"rl.num_min ({self.num_min}) must be <= rl.num_critics ({self.num_critics})")


# ---------------------------------------------------------------------------- networks
def make_drq_encoder(cfg: ResidualConfig, image_shapes: dict[str, tuple[int, ...]] | None):
    """The trainable camera encoder with rl.encoder=drq (None otherwise)."""
    if cfg.encoder != "drq":
        return None
    from robotlearn.rl.features import DrQEncoder

    return DrQEncoder(image_shapes or {}, cfg.drq_channels, cfg.drq_keypoints, cfg.drq_shift)


class ResidualActor(nn.Module):
    """(normalised state, base action) -> residual in [-scale, scale]; zero at init.

    Carries the state normaliser as buffers so exported actor weights are self-contained: `state_mean` and
    `state_std` hold the centre and scale of rl.state_norm (mean and std, or median and 1.4826 MAD).
    """

    def __init__(self, state_dim: int, action_dim: int, cfg: ResidualConfig) -> None:
        super().__init__()
        self.scale = cfg.residual_scale
        self.symlog = cfg.state_norm == "robust"
        if any(i >= action_dim for i in cfg.base_only_dims):
            raise ValueError(f"rl.base_only_dims {list(cfg.base_only_dims)}: the action has {action_dim} dims")
        # 1 where the residual acts, 0 on rl.base_only_dims; from the config, so not saved with the weights
        self.register_buffer("act_mask", residual_mask(action_dim, cfg), persistent=False)
        layers: list[nn.Module] = []
        d = state_dim + action_dim
        for _ in range(cfg.num_layers):
            layers += [nn.Linear(d, cfg.hidden_dim), nn.LayerNorm(cfg.hidden_dim), nn.ReLU()]
            d = cfg.hidden_dim
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(d, action_dim)
        nn.init.zeros_(self.head.weight)  # zero-init last layer: residual == 0 at step 0
        nn.init.zeros_(self.head.bias)
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))

    def normalize(self, state: torch.Tensor) -> torch.Tensor:
        x = (state - self.state_mean) / self.state_std
        if self.symlog:  # rl.state_norm=robust
            x = torch.sign(x) * torch.log1p(x.abs())
        return x.clamp(-10.0, 10.0)

    def forward(self, norm_state: torch.Tensor, base_action: torch.Tensor) -> torch.Tensor:
        h = self.trunk(torch.cat([norm_state, base_action], -1))  # (B, H)
        return torch.tanh(self.head(h)) * self.scale * self.act_mask  # (B, A)


def state_statistics(states: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, S) states -> the (S,) centre and scale of rl.state_norm `how` ("std" or "robust")."""
    if how == "robust":
        median = np.median(states, 0)
        return median, 1.4826 * np.median(np.abs(states - median), 0)  # MAD, scaled to a Gaussian's std
    return states.mean(0), states.std(0)


def residual_mask(action_dim: int, cfg: ResidualConfig) -> torch.Tensor:
    """(A,) 1.0 on the dims the residual acts on, 0.0 on rl.base_only_dims."""
    mask = torch.ones(action_dim)
    mask[list(cfg.base_only_dims)] = 0.0
    return mask


class CriticEnsemble(nn.Module):
    """E LayerNorm MLP critics evaluated together with batched matmuls (no Python loop over E).

    Weights are stacked (E, in, out); one `torch.baddbmm` per layer runs all critics.
    """

    def __init__(self, in_dim: int, cfg: ResidualConfig) -> None:
        super().__init__()
        e, h = cfg.num_critics, cfg.hidden_dim
        dims = [in_dim] + [h] * cfg.num_layers + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(d_in)  # nn.Linear's default init, per critic
            self.weights.append(nn.Parameter(torch.empty(e, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(e, 1, d_out).uniform_(-bound, bound)))
        self.ln_w = nn.ParameterList([nn.Parameter(torch.ones(e, 1, h)) for _ in range(cfg.num_layers)])
        self.ln_b = nn.ParameterList([nn.Parameter(torch.zeros(e, 1, h)) for _ in range(cfg.num_layers)])
        self.num_critics, self.hidden = e, h

    def forward(self, norm_state: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Q of every critic (E, B), or only of `members` (M,) -> (M, B): the TD target needs just 2."""
        def pick(p: torch.Tensor) -> torch.Tensor:
            return p if members is None else p[members]

        x = torch.cat([norm_state, action], -1)  # (B, S+A)
        x = x.unsqueeze(0).expand(self.num_critics if members is None else len(members), -1, -1)  # (E, B, S+A)
        for i in range(len(self.ln_w)):
            x = torch.baddbmm(pick(self.biases[i]), x, pick(self.weights[i]))  # (E, B, H)
            x = torch.addcmul(pick(self.ln_b[i]), F.layer_norm(x, (self.hidden,)), pick(self.ln_w[i]))  # LN affine
            x = x.relu_()  # in place: one pass less over (E, B, H)
        return torch.baddbmm(pick(self.biases[-1]), x, pick(self.weights[-1])).squeeze(-1)  # (E, B)


def combine(base_action: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """The executed action: base plus residual, kept inside the normalised action box."""
    return (base_action + residual).clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------- learner
class ResidualLearner:
    """Owns actor, critics, their targets and optimisers; `update(batch)` is one gradient step."""

    def __init__(self, state_dim: int, action_dim: int, cfg: ResidualConfig, device: str | None = None,
                 image_shapes: dict[str, tuple[int, ...]] | None = None) -> None:
        """`image_shapes` (rl.encoder=drq): {images/<cam>: (H, W, 3)}; batches then carry those uint8 frames
        (and next/ twins), and the networks read [state, encoder(frames)]."""
        self.cfg = cfg
        self.state_dim, self.action_dim = state_dim, action_dim
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.encoder = make_drq_encoder(cfg, image_shapes)
        if self.encoder is not None:
            self.encoder.to(self.device)
        net_dim = state_dim + (self.encoder.out_dim if self.encoder is not None else 0)  # S (+ F)
        self.actor = ResidualActor(net_dim, action_dim, cfg).to(self.device)
        self.actor_target = ResidualActor(net_dim, action_dim, cfg).to(self.device)
        self.critic = CriticEnsemble(net_dim + action_dim, cfg).to(self.device)
        self.critic_target = CriticEnsemble(net_dim + action_dim, cfg).to(self.device)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critic_target.load_state_dict(self.critic.state_dict())
        for p in [*self.actor_target.parameters(), *self.critic_target.parameters()]:
            p.requires_grad_(False)
        # fused Adam: one kernel for all parameters (CPU and CUDA)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        critic_params = [*self.critic.parameters(), *(self.encoder.parameters() if self.encoder is not None else [])]
        self.critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_lr, fused=True)  # the encoder learns from Q
        self.num_updates = 0  # critic updates done
        self.num_actor_updates = 0
        self.version = 0  # bumped by the runtime each time it publishes weights
        self.env_steps = 0  # online env steps ingested (kept here so checkpoints carry it)
        self.autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=cfg.precision == "bf16")

    def set_state_normalizer(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Fix the state normaliser (from demo statistics: `state_statistics`) for actor, critic and targets;
        scales below 1e-3 are raised to it (a constant dim)."""
        extra = self.actor.state_mean.shape[0] - len(mean)  # drq features: left as they are (0 mean, unit std)
        m = torch.as_tensor(np.concatenate([mean, np.zeros(extra)]), dtype=torch.float32, device=self.device)
        s = torch.as_tensor(np.concatenate([np.maximum(std, 1e-3), np.ones(extra)]), dtype=torch.float32,
                            device=self.device)
        for net in (self.actor, self.actor_target):
            net.state_mean.copy_(m)
            net.state_std.copy_(s)

    # -- the update ------------------------------------------------------------------
    def to_device(self, batch: dict[str, np.ndarray | torch.Tensor]) -> dict[str, torch.Tensor]:
        """float32 tensors on the device; camera frames stay uint8 (4x less to copy) until the encoder."""
        return {k: torch.as_tensor(v, dtype=torch.uint8 if "images/" in k else torch.float32).to(
            self.device, non_blocking=True) for k, v in batch.items()}

    def with_features(self, b: dict[str, torch.Tensor], augment: bool) -> dict[str, torch.Tensor]:
        """rl.encoder=drq: state and next_state extended by the encoder's features of the frames. The next
        frames are encoded without gradient (DrQ-v2); the current ones carry it into the encoder."""
        if self.encoder is None:
            return b
        keys = self.encoder.image_keys
        feats = self.encoder({k: b[k] for k in keys}, augment)  # (B, F)
        with torch.no_grad():
            next_feats = self.encoder({k: b[f"next/{k}"] for k in keys}, augment)
        return {**b, "state": torch.cat([b["state"], feats], -1), "next_state": torch.cat([b["next_state"], next_feats], -1)}

    @torch.no_grad()
    def td_target(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.cfg
        next_s = self.actor_target.normalize(b["next_state"])  # (B, S)
        res = self.actor_target(next_s, b["next_base_action"])  # (B, A)
        noise = (torch.randn_like(res) * cfg.target_noise * cfg.residual_scale).clamp(
            -cfg.target_noise_clip * cfg.residual_scale, cfg.target_noise_clip * cfg.residual_scale
        )
        res = (res + noise * self.actor_target.act_mask).clamp(-cfg.residual_scale, cfg.residual_scale)
        pick = torch.randperm(cfg.num_critics, device=self.device)[: cfg.num_min]  # a random pair (REDQ)
        next_q = self.critic_target(next_s, combine(b["next_base_action"], res), members=pick)  # (M, B)
        next_q = next_q.min(0).values.float()  # (B,)
        return b["reward"] + b["discount"] * next_q  # (B,)

    def update(self, batch: dict[str, np.ndarray | torch.Tensor]) -> dict[str, float]:
        """One critic update; every `actor_delay`-th (after the critic warm-up) also an actor update."""
        with self.autocast:
            return self._update(self.to_device(batch))

    def _update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        b = self.with_features(b, augment=True)  # drq: state = [state, encoder(shifted frames)]
        target = self.td_target(b)  # (B,)
        s = self.actor.normalize(b["state"])  # (B, S)
        q = self.critic(s, b["action"])  # (E, B)
        critic_loss = F.mse_loss(q.float(), target.unsqueeze(0).expand_as(q)) * cfg.num_critics  # sum over E
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        self.num_updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_mean": target.mean()}

        if self.num_updates > cfg.critic_warmup_updates and self.num_updates % cfg.actor_delay == 0:
            s = s.detach()  # drq: the actor reads the encoder's features, it does not train them
            res = self.actor(s, b["base_action"])  # (B, A)
            self.critic.requires_grad_(False)  # gradients flow through the critics to the actor only
            actor_loss = -self.critic(s, combine(b["base_action"], res)).float().mean()  # ensemble mean
            if cfg.residual_penalty:
                actor_loss = actor_loss + cfg.residual_penalty * (res.float() / cfg.residual_scale).pow(2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.critic.requires_grad_(True)
            nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_clip)
            self.actor_opt.step()
            self.num_actor_updates += 1
            metrics["actor_loss"] = actor_loss.detach()
            metrics["residual_abs"] = res.detach().abs().mean()
            self._polyak(self.actor, self.actor_target)
        self._polyak(self.critic, self.critic_target)
        return {k: float(v) for k, v in metrics.items()}

    @torch.no_grad()
    def _polyak(self, net: nn.Module, target: nn.Module) -> None:
        torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), self.cfg.tau)

    @torch.no_grad()
    def td_error(self, batch: dict[str, np.ndarray | torch.Tensor]) -> float:
        """Mean squared TD error of the online critics against a noise-free target (for tests/logging)."""
        b = self.with_features(self.to_device(batch), augment=False)
        next_s = self.actor_target.normalize(b["next_state"])
        next_a = combine(b["next_base_action"], self.actor_target(next_s, b["next_base_action"]))
        target = b["reward"] + b["discount"] * self.critic_target(next_s, next_a).min(0).values
        q = self.critic(self.actor.normalize(b["state"]), b["action"])
        return float(((q - target) ** 2).mean())

    # -- weights for actors ----------------------------------------------------------------
    def actor_weights(self) -> dict[str, np.ndarray]:
        """Actor parameters + normaliser (+ `encoder/...` with rl.encoder=drq) as numpy, for messages.encode_weights."""
        out = {k: v.detach().cpu().numpy() for k, v in self.actor.state_dict().items()}
        if self.encoder is not None:
            out.update({f"encoder/{k}": v.detach().cpu().numpy() for k, v in self.encoder.state_dict().items()})
        return out

    # -- checkpoint: safetensors tensors + YAML config/counters (no pickle) ----------------
    def save(self, directory: str | Path) -> Path:
        """Write the checkpoint folder atomically (a crash leaves the previous one whole)."""
        with atomic_dir(directory) as d:
            self.write(d)
        return Path(directory)

    def write(self, d: Path) -> None:
        """Write learner.safetensors + learner.yaml into the existing folder `d` (callers add files beside)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, mod in self._modules().items():
            tensors.update({f"{name}/{k}": v for k, v in mod.state_dict().items()})
        meta: dict[str, Any] = {"config": asdict(self.cfg), "state_dim": self.state_dim, "action_dim": self.action_dim,
                                "image_shapes": {k: list(v) for k, v in self.encoder.image_shapes.items()}
                                if self.encoder is not None else None,
                                "num_updates": self.num_updates, "num_actor_updates": self.num_actor_updates,
                                "version": self.version, "env_steps": self.env_steps, "optimizers": {}}
        for name, opt in self._optimizers().items():
            sd = opt.state_dict()
            meta["optimizers"][name] = sd["param_groups"]
            for idx, st in sd["state"].items():
                tensors.update({f"opt/{name}/{idx}/{k}": v for k, v in st.items()})
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(d / "learner.safetensors"))
        (d / "learner.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> ResidualLearner:
        d = readable_dir(directory)
        for f in ("learner.yaml", "learner.safetensors"):
            if not (d / f).exists():
                raise FileNotFoundError(f"learner checkpoint {d} is missing {f}")
        meta = yaml.safe_load((d / "learner.yaml").read_text())
        shapes = {k: tuple(v) for k, v in (meta.get("image_shapes") or {}).items()} or None
        learner = cls(meta["state_dim"], meta["action_dim"], ResidualConfig(**meta["config"]), device, shapes)
        tensors = load_file(str(d / "learner.safetensors"), device=str(learner.device))
        for name, mod in learner._modules().items():
            mod.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")})
        for name, opt in learner._optimizers().items():
            state: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in tensors.items():
                if k.startswith(f"opt/{name}/"):
                    idx, key = k.split("/")[2:]
                    state.setdefault(int(idx), {})[key] = v  # fused Adam keeps `step` on the param device
            opt.load_state_dict({"state": state, "param_groups": meta["optimizers"][name]})
        for k in ("num_updates", "num_actor_updates", "version", "env_steps"):
            setattr(learner, k, int(meta[k]))
        return learner

    def _modules(self) -> dict[str, nn.Module]:
        mods = {"actor": self.actor, "actor_target": self.actor_target,
                "critic": self.critic, "critic_target": self.critic_target}
        return {**mods, "encoder": self.encoder} if self.encoder is not None else mods

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}


# ---------------------------------------------------------------------------- actor side
class ResidualPolicy:
    """Actor-side inference on CPU: base action + (noisy) residual -> executed action."""

    def __init__(self, state_dim: int, action_dim: int, cfg: ResidualConfig, seed: int = 0,
                 image_shapes: dict[str, tuple[int, ...]] | None = None) -> None:
        """`state_dim`: what the actor reads besides drq features (state, or [state, frozen features]);
        `image_shapes` (rl.encoder=drq): the cameras the published encoder reads."""
        self.cfg = cfg
        self.encoder = make_drq_encoder(cfg, image_shapes)
        if self.encoder is not None:
            self.encoder.eval().requires_grad_(False)
            state_dim += self.encoder.out_dim
        self.net = ResidualActor(state_dim, action_dim, cfg).eval()
        self.rng = np.random.default_rng(seed)
        self.version = 0
        self._noise: np.ndarray | None = None  # exploration noise of the last step (AR(1) state)

    def reset(self) -> None:
        """New episode: the correlated exploration noise starts afresh."""
        self._noise = None

    def load_weights(self, tensors: dict[str, np.ndarray], version: int) -> None:
        t = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
        self.net.load_state_dict({k: v for k, v in t.items() if not k.startswith("encoder/")})
        if self.encoder is not None:
            self.encoder.load_state_dict({k[len("encoder/"):]: v for k, v in t.items() if k.startswith("encoder/")})
        self.version = version

    def features(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        """rl.encoder=drq: the published encoder's features of this observation's frames (else None)."""
        return None if self.encoder is None else self.encoder.encode(obs)

    @torch.no_grad()
    def residual(self, state: np.ndarray, base_action: np.ndarray) -> np.ndarray:
        s = torch.as_tensor(state, dtype=torch.float32).unsqueeze(0)  # (1, S)
        a = torch.as_tensor(base_action, dtype=torch.float32).unsqueeze(0)  # (1, A)
        return self.net(self.net.normalize(s), a)[0].numpy()  # (A,)

    def act(self, state: np.ndarray, base_action: np.ndarray, mode: str = "train") -> np.ndarray:
        """mode: "eval" (deterministic), "train" (Gaussian noise on the residual), "warmup" (base + uniform)."""
        mask = self.net.act_mask.numpy()  # (A,) 0 on rl.base_only_dims
        if mode == "warmup":
            noise = self.rng.uniform(-self.cfg.warmup_noise, self.cfg.warmup_noise, base_action.shape)
            return np.clip(base_action + noise * mask, -1.0, 1.0).astype(np.float32)
        res = self.residual(state, base_action)
        if mode == "train":
            res = res + self._explore_noise(res.shape) * mask
        return np.clip(base_action + res, -1.0, 1.0).astype(np.float32)

    def _explore_noise(self, shape: tuple[int, ...]) -> np.ndarray:
        """AR(1) Gaussian noise with stationary std explore_std (white at explore_corr 0)."""
        eps = self.rng.normal(0.0, self.cfg.explore_std, shape)
        rho = self.cfg.explore_corr
        if self._noise is not None and rho > 0:
            eps = rho * self._noise + math.sqrt(1.0 - rho * rho) * eps
        self._noise = eps
        return eps
