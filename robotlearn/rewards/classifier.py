"""A learned success detector: camera frames (+ optional proprioception) -> p(success), as HIL-SERL trains.

On a robot nothing says `info["success"]`; a binary classifier on the cameras does. Labels come
from the dataset: a per-step `success_label` array where it has one, otherwise the last `last_k`
steps of each successful episode are positives and every other step a negative. The checkpoint
is safetensors (weights + normaliser buffers) and JSON (shapes, config, threshold): no pickle.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robotlearn.atomic_dir import atomic_dir, readable_dir
from robotlearn.envs.interface import STATE_KEY
from robotlearn.policies.config import EncoderConfig
from robotlearn.policies.encoders import ObsEncoder
from robotlearn.policies.normalizer import Normalizer

FORMAT, VERSION = "robotlearn-reward-classifier", 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
LABEL_KEY = "success_label"  # optional per-step bool array in a dataset: a human's or a detector's label


@dataclass
class ClassifierConfig:
    """What the classifier reads and how it decides."""

    obs_keys: list[str] = field(default_factory=list)  # images/<cam> (+ state); [] = every camera + state
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(state_hidden=[64], state_features=32,
                                                                        image_channels=16, image_keypoints=16))
    hidden: int = 64
    threshold: float = 0.5  # p(success) above this counts as a positive frame
    consecutive: int = 3  # positive frames in a row that declare success (as a reward source)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or self.consecutive < 1 or self.hidden < 1:
            raise ValueError(f"classifier: need 0 < threshold < 1, consecutive >= 1, hidden >= 1 (got "
                             f"{self.threshold}, {self.consecutive}, {self.hidden})")


class SuccessClassifier(nn.Module):
    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], cfg: ClassifierConfig) -> None:
        super().__init__()
        self.obs_shapes, self.cfg = {k: tuple(v) for k, v in obs_shapes.items()}, cfg
        self.normalizer = Normalizer({STATE_KEY: obs_shapes[STATE_KEY][0]} if STATE_KEY in obs_shapes else {})
        self.encoder = ObsEncoder(self.obs_shapes, cfg.encoder)
        self.head = nn.Sequential(nn.Linear(self.encoder.out_dim, cfg.hidden), nn.Mish(), nn.Linear(cfg.hidden, 1))

    def logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """{key: (B, ...)} raw observations -> (B,) logits."""
        x = {k: obs[k][:, None] for k in self.obs_shapes}  # (B, 1, ...): the encoder takes a time axis
        if STATE_KEY in x:
            x[STATE_KEY] = self.normalizer.normalize(STATE_KEY, x[STATE_KEY].float())
        return self.head(self.encoder(x)[:, 0]).squeeze(-1)

    @torch.no_grad()
    def prob(self, batch: dict[str, np.ndarray], chunk: int = 256) -> np.ndarray:
        """{key: (N, ...)} numpy observations -> (N,) p(success), in eval mode."""
        was = self.training
        self.eval()
        n = len(next(iter(batch.values())))
        out = np.empty(n, np.float32)
        for s in range(0, n, chunk):
            x = {k: torch.as_tensor(np.asarray(batch[k][s:s + chunk])) for k in self.obs_shapes}
            out[s:s + chunk] = torch.sigmoid(self.logits(x)).numpy()
        self.train(was)
        return out

    def __call__(self, obs: dict[str, np.ndarray]) -> float:  # type: ignore[override]
        """One observation -> p(success)."""
        return float(self.prob({k: np.asarray(obs[k])[None] for k in self.obs_shapes})[0])


def step_labels(ends: np.ndarray, success: np.ndarray, last_k: int, per_step: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the dataset's own per-step labels, else the last `last_k` steps of successful episodes."""
    if per_step is not None:
        return np.asarray(per_step, bool)
    labels, start = np.zeros(int(ends[-1]) if len(ends) else 0, bool), 0
    for end, ok in zip(ends, success):
        if ok:
            labels[max(start, int(end) - last_k):int(end)] = True
        start = int(end)
    return labels


def save_classifier(model: SuccessClassifier, path: str | Path, **meta: Any) -> Path:
    path = Path(path)
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS),
                  metadata={"format": FORMAT, "version": str(VERSION)})
        (tmp / CONFIG).write_text(json.dumps({
            "format": FORMAT, "version": VERSION, "obs_shapes": {k: list(v) for k, v in model.obs_shapes.items()},
            "config": asdict(model.cfg), "meta": meta}, indent=2))
    return path


class ClassifierError(RuntimeError):
    """A reward-classifier checkpoint that is missing, corrupt or from another format version."""


def load_classifier(path: str | Path) -> SuccessClassifier:
    d = readable_dir(Path(path))
    try:
        cfg = json.loads((d / CONFIG).read_text())
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise ClassifierError(f"{d}: no readable reward classifier ({CONFIG}: {e})") from e
    if cfg.get("format") != FORMAT or cfg.get("version") != VERSION:
        raise ClassifierError(f"{d / CONFIG}: format {cfg.get('format')!r} v{cfg.get('version')} is not "
                              f"{FORMAT!r} v{VERSION}")
    c = cfg["config"]
    ccfg = ClassifierConfig(**{**c, "encoder": EncoderConfig(**c["encoder"])})
    model = SuccessClassifier({k: tuple(v) for k, v in cfg["obs_shapes"].items()}, ccfg)
    try:
        state = load_file(str(d / WEIGHTS))
        missing, unexpected = model.load_state_dict(state, strict=False)
    except Exception as e:  # safetensors raises its own types for truncated or corrupt files
        raise ClassifierError(f"{d / WEIGHTS}: cannot read weights ({e})") from e
    if missing or unexpected:
        raise ClassifierError(f"{d / WEIGHTS}: weights do not match the config (missing {missing}, "
                              f"unexpected {unexpected})")
    return model.eval()
