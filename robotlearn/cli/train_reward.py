"""`robotlearn train-reward dataset=<zarr> [classifier.obs_keys=[images/front,state]] [last_k=5] [steps=1000]`.

Trains a binary success classifier (camera encoder + optional proprioception -> p(success)) on a zarr
dataset, holds out whole episodes to report precision / recall / F1, saves a calibration PNG and a
safetensors + JSON checkpoint (`<out_dir>/classifier`) that `reward=classifier:<dir>` loads.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.config import register_schema
from robotlearn.data import DatasetError, EpisodeDataset
from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY
from robotlearn.progress import progress_bar, progress_mode
from robotlearn.rewards.classifier import (
    LABEL_KEY,
    ClassifierConfig,
    SuccessClassifier,
    save_classifier,
    step_labels,
)


@dataclass
class TrainRewardConfig:
    dataset: Optional[str] = None  # zarr episode dataset with camera images (required)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    last_k: int = 5  # without per-step labels: the last k steps of successful episodes are the positives
    holdout: float = 0.2  # fraction of episodes held out for precision / recall / F1
    steps: int = 1000
    batch_size: int = 64  # half positives, half negatives
    lr: float = 1e-3
    seed: int = 0
    out_dir: Optional[str] = None  # default outputs/train_reward/<time>
    progress: str = "auto"  # auto | bar | lines | off (robotlearn/progress.py); true = auto, false = off

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        if self.last_k < 1 or self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"need last_k >= 1, steps >= 1, batch_size >= 2 (got {self.last_k}, {self.steps}, "
                             f"{self.batch_size})")


register_schema("train_reward_schema", TrainRewardConfig)


def metrics(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p > threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / max(precision + recall, 1e-9),
            "accuracy": float((pred == y).mean()), "positives": int(y.sum()), "frames": int(len(y))}


def calibration_png(p: np.ndarray, y: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(p, bins) - 1, 0, 9)
    xs = [p[idx == b].mean() for b in range(10) if (idx == b).any()]
    ys = [y[idx == b].mean() for b in range(10) if (idx == b).any()]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    ax.plot(xs, ys, "o-", label="held-out frames")
    ax.set(xlabel="predicted p(success)", ylabel="fraction successful", title="calibration", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run(cfg: TrainRewardConfig) -> dict[str, Any]:
    if not cfg.dataset:
        raise ConfigError("train-reward needs dataset=<zarr>")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ds = EpisodeDataset(cfg.dataset)
    if ds.n_episodes < 2:
        raise ConfigError(f"dataset {cfg.dataset} has {ds.n_episodes} episodes; train-reward needs >= 2 to hold some out")
    keys = cfg.classifier.obs_keys or [k for k in ds.keys if k.startswith(IMAGE_PREFIX) or k == STATE_KEY]
    missing = [k for k in keys if k not in ds.keys]
    if missing:
        raise ConfigError(f"dataset {cfg.dataset} has no {missing}; it has {ds.keys}")
    if not any(k.startswith(IMAGE_PREFIX) for k in keys):
        raise ConfigError(f"train-reward learns from cameras: {keys} has no images/<camera> key "
                          f"(dataset keys: {ds.keys})")
    data = ds.load(keys + ([LABEL_KEY] if LABEL_KEY in ds.keys else []))
    y = step_labels(ds.episode_ends, ds.meta_array("success"), cfg.last_k, data.pop(LABEL_KEY, None))
    episode = np.repeat(np.arange(ds.n_episodes), np.diff(np.concatenate([[0], ds.episode_ends])))
    held = rng.permutation(ds.n_episodes)[: max(1, int(round(cfg.holdout * ds.n_episodes)))]
    test = np.isin(episode, held)
    train_pos, train_neg = np.flatnonzero(y & ~test), np.flatnonzero(~y & ~test)
    if not len(train_pos) or not len(train_neg):
        raise ConfigError(f"dataset {cfg.dataset}: the training episodes need both successful and other frames "
                          f"({len(train_pos)} positives, {len(train_neg)} negatives)")
    model = SuccessClassifier({k: tuple(data[k].shape[1:]) for k in keys}, cfg.classifier)
    if STATE_KEY in keys:
        from robotlearn.policies.normalizer import affine_stats

        model.normalizer.set_stats(STATE_KEY, *affine_stats(data[STATE_KEY][~test], "gaussian"))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    half, losses, t0 = cfg.batch_size // 2, [], time.time()
    model.train()
    for step in progress_bar(range(cfg.steps), desc="train reward", unit="step", mode=cfg.progress):
        idx = np.concatenate([rng.choice(train_pos, half), rng.choice(train_neg, cfg.batch_size - half)])
        x = {k: torch.as_tensor(data[k][idx]) for k in keys}
        target = torch.as_tensor(y[idx], dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.logits(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    p = model.prob({k: data[k][test] for k in keys})
    held_out = metrics(p, y[test], cfg.classifier.threshold)
    out = Path(cfg.out_dir or f"outputs/train_reward/{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = save_classifier(model, out / "classifier", dataset=str(cfg.dataset), held_out=held_out,
                           last_k=cfg.last_k, steps=cfg.steps)
    png = calibration_png(p, y[test], out / "calibration.png")
    result = {"held_out": held_out, "first_loss": float(np.mean(losses[:20])), "last_loss": float(np.mean(losses[-20:])),
              "train_s": time.time() - t0, "checkpoint": str(ckpt), "calibration_png": str(png),
              "held_out_episodes": sorted(int(i) for i in held)}
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    print(f"reward classifier on {len(held)} held-out episodes ({held_out['frames']} frames, "
          f"{held_out['positives']} positive): precision {held_out['precision']:.2f} recall {held_out['recall']:.2f} "
          f"F1 {held_out['f1']:.2f} at p > {cfg.classifier.threshold}")
    print(f"checkpoint: {ckpt}   calibration: {png}")
    return result


def main(argv: list[str]) -> int:
    try:
        run(load("train_reward", argv, TrainRewardConfig))
    except (ConfigError, DatasetError, FileNotFoundError) as e:
        fail(str(e))
    return 0
