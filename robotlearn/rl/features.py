"""What the residual actor and critics read: `state`, plus frozen image features with `rl.encoder=base`.

On a robot the state holds joints only; the object is in the cameras. With `rl.encoder=base`
the image encoder of a BC/diffusion checkpoint (the base's own, or `rl.encoder_checkpoint`)
is frozen and run by the actor once per step (batch 1, ~0.3 ms on a CPU core); its features
travel in the episode next to the state and the frames, and the learner trains on
`[state, features]` without ever running a conv net (the CPU path). Demos get their features
from the same encoder over their stored frames.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from robotlearn.envs.interface import STATE_KEY

FEATURES_KEY = "features"  # episode / log array: (T, F) float32 frozen image features


class FrozenImageEncoder:
    """The camera encoders of a trained ChunkedPolicy, frozen: frames (uint8 HxWx3 per camera) -> (F,) features."""

    def __init__(self, policy, source: str = "") -> None:
        enc = policy.encoder
        if not enc.image_keys:
            raise ValueError(f"rl.encoder=base: the policy checkpoint {source or ''} has no image encoder (it was "
                             f"trained on {sorted(policy.obs_shapes)}); train the base on camera images")
        self.image_keys, self.source = list(enc.image_keys), source
        self.shapes = {k: tuple(policy.obs_shapes[k]) for k in self.image_keys}
        # copies, on the CPU: the policy they come from may keep acting (on its own device) next to them
        self.nets = [copy.deepcopy(enc.cams[0 if len(enc.cams) == 1 else i]).eval().cpu()
                     for i in range(len(self.image_keys))]
        for net in self.nets:
            net.requires_grad_(False)
        self.dim = sum(net.out_dim for net in self.nets)

    def check_shapes(self, shapes: dict[str, tuple], where: str) -> None:
        """`shapes`: observation key -> per-step shape of what feeds the encoder (an env's or a dataset's)."""
        for k, shape in self.shapes.items():
            if tuple(shapes.get(k, ())) != shape:
                got = tuple(shapes[k]) if k in shapes else "nothing"
                raise ValueError(f"rl.encoder=base: {where} must give {k} {shape} for the encoder of "
                                 f"{self.source or 'the base'}, it gives {got}")

    @torch.no_grad()
    def batch(self, frames: dict[str, np.ndarray], chunk: int = 256) -> np.ndarray:
        """{images/<cam>: (N, H, W, 3) uint8} -> (N, F) float32, in chunks of `chunk` frames."""
        n = len(frames[self.image_keys[0]])
        out = np.empty((n, self.dim), np.float32)
        for s in range(0, n, chunk):
            parts = []
            for key, net in zip(self.image_keys, self.nets):
                img = np.array(frames[key][s:s + chunk], np.uint8)  # a copy: frames off the wire are read-only
                x = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 127.5 - 1.0
                parts.append(net(x))
            out[s:s + chunk] = torch.cat(parts, dim=-1).numpy()
        return out

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.batch({k: np.asarray(obs[k])[None] for k in self.image_keys})[0]


def frozen_encoder(rl, base_checkpoint: str | None, base_policy=None) -> FrozenImageEncoder | None:
    """The frozen encoder a residual with config `rl` reads: None (rl.encoder=none, or drq, whose encoder the
    learner trains), rl.encoder_checkpoint's, or the base checkpoint's (`base_policy` when already loaded)."""
    if rl.encoder != "base":
        return None
    from robotlearn.policies.checkpoint import load_policy

    if rl.encoder_checkpoint:
        return FrozenImageEncoder(load_policy(rl.encoder_checkpoint, device="cpu"), rl.encoder_checkpoint)
    if base_policy is None and base_checkpoint is None:
        raise ValueError("rl.encoder=base: the base is not a checkpoint; name one with rl.encoder_checkpoint=<path>")
    policy = base_policy if base_policy is not None else load_policy(base_checkpoint, device="cpu")
    return FrozenImageEncoder(policy, str(base_checkpoint or ""))


def rl_state(state: np.ndarray, features: np.ndarray | None) -> np.ndarray:
    """The residual's input: `state` (..., S), then the image features (..., F) where there are any."""
    return state if features is None else np.concatenate([state, features], axis=-1).astype(np.float32)


def rl_obs_state(obs: dict[str, np.ndarray], encoder: FrozenImageEncoder | None) -> np.ndarray:
    """One observation -> the residual's input vector."""
    return rl_state(np.asarray(obs[STATE_KEY], np.float32), None if encoder is None else encoder(obs))


class DrQEncoder(torch.nn.Module):
    """rl.encoder=drq (DrQ-v2 style, for GPUs): one conv encoder per camera, trained through the critic loss
    with random-shift augmentation; the actor reads its features detached. Shared by the critic ensemble.
    uint8 frames (B, H, W, 3) per camera -> (B, F) = the cameras' keypoint features side by side."""

    def __init__(self, image_shapes: dict[str, tuple[int, ...]], channels: int, keypoints: int, shift: int) -> None:
        from robotlearn.policies.encoders import ConvEncoder, RandomShift

        super().__init__()
        if not image_shapes:
            raise ValueError("rl.encoder=drq needs camera observations (images/<cam>); the env has none")
        self.image_keys = sorted(image_shapes)
        self.image_shapes = {k: tuple(int(d) for d in image_shapes[k]) for k in self.image_keys}
        self.cams = torch.nn.ModuleList([ConvEncoder(channels, keypoints) for _ in self.image_keys])
        self.shift = RandomShift(shift)
        self.out_dim = sum(c.out_dim for c in self.cams)

    def forward(self, frames: dict[str, torch.Tensor], augment: bool = False) -> torch.Tensor:
        parts = []
        for key, net in zip(self.image_keys, self.cams):
            x = frames[key].permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W) in [-1, 1]
            if augment:
                self.shift.train()
                x = self.shift(x)
            parts.append(net(x))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def encode(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One observation -> (F,) features, as the actor computes them each step (no augmentation)."""
        frames = {k: torch.from_numpy(np.array(obs[k], np.uint8))[None] for k in self.image_keys}
        return self(frames)[0].numpy()
