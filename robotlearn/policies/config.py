"""Typed policy configs (the `policy=` hydra group: configs/policy/<name>.yaml).

One schema for every policy kind so a checkpoint's config.json round-trips
through the same dataclass; each kind reads only its own section.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from omegaconf import OmegaConf


@dataclass
class EncoderConfig:
    state_hidden: list[int] = field(default_factory=lambda: [256])
    state_features: int = 128  # state MLP output size
    image_channels: int = 32  # width of the first conv stage; doubles per stage
    image_keypoints: int = 32  # spatial-softmax keypoints per camera -> 2*K features
    share_cameras: bool = False  # one conv net for all cameras instead of one each
    random_shift: int = 4  # DrQ-style pad-and-crop pixels during training (0 = off)


@dataclass
class BCConfig:
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    loss: str = "l1"  # "l1" | "mse"
    dropout: float = 0.0


@dataclass
class DiffusionConfig:
    down_dims: list[int] = field(default_factory=lambda: [32, 64, 128])
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 10  # DDIM steps at act() time
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"  # "epsilon" | "sample"


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 10.0
    ema: bool = False  # keep an exponential moving average of the weights; it is what gets saved
    ema_max_decay: float = 0.999


@dataclass
class PolicyConfig:
    kind: str = "bc"  # "bc" | "diffusion"
    n_obs: int = 2  # observation history length fed to the model
    horizon: int = 16  # actions predicted per call, starting at the current step
    n_action_steps: int = 8  # of those, executed open-loop before the next act()
    temporal_ensemble: Optional[float] = None  # ACT weight exp(-k*i); set -> act() every step, 1-step chunks
    obs_keys: Optional[list[str]] = None  # None: every observation key in the dataset
    normalization: str = "limits"  # state normalisation: "limits" -> [-1, 1] | "gaussian" -> zero mean, unit std
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        if self.kind not in ("bc", "diffusion"):
            raise ValueError(f"policy.kind={self.kind!r}: expected 'bc' or 'diffusion'")
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"policy.n_action_steps={self.n_action_steps} must be in [1, horizon={self.horizon}]")
        if self.n_obs < 1:
            raise ValueError(f"policy.n_obs={self.n_obs} must be >= 1")
        if self.kind == "diffusion":
            levels = len(self.diffusion.down_dims) - 1
            if self.horizon % (2**levels):
                raise ValueError(
                    f"policy.horizon={self.horizon} must be divisible by 2**{levels} for a U-Net with "
                    f"down_dims={self.diffusion.down_dims}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "PolicyConfig":
        base = OmegaConf.structured(PolicyConfig)
        OmegaConf.set_struct(base, True)
        return OmegaConf.to_object(OmegaConf.merge(base, d))  # type: ignore[return-value]
