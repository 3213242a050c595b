"""`robotlearn train-bc policy=bc_mlp|diffusion dataset=<zarr> [env=sim/lift] steps=2000`.

Trains a base policy on an episode dataset, evaluates it in the env every
`eval_every` steps, logs to TensorBoard, and writes under `out_dir`:
checkpoints/{last,best}/ (safetensors + config.json), metrics.json, curves.png.
The env defaults to the one recorded in the dataset.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from tqdm import tqdm

from robotlearn.cli.config import ConfigError, load
from robotlearn.data import EpisodeDataset, SequenceDataset
from robotlearn.envs import make_env
from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY, RobotEnv
from robotlearn.policies.checkpoint import build_policy, check_env_compatible, env_info_dict, save_policy
from robotlearn.policies.chunked import ACTION_KEY, ChunkedPolicy
from robotlearn.policies.config import PolicyConfig
from robotlearn.policies.rollout import evaluate
from robotlearn.policies.training import Trainer


@dataclass
class TrainBCConfig:
    dataset: Optional[str] = None  # path to a zarr episode dataset (required)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    env: Optional[dict[str, Any]] = None  # hydra `env=` group; None: the env recorded in the dataset
    steps: int = 2000
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"  # auto: cuda if available
    num_workers: int = 0
    max_episodes: Optional[int] = None  # train on the first N episodes only
    log_every: int = 50
    eval_every: int = 500  # 0: no periodic eval
    eval_episodes: int = 5
    final_eval_episodes: int = 20
    out_dir: Optional[str] = None  # default outputs/train_bc/<time>_<kind>
    progress: bool = True


def dataset_obs_shapes(ds: EpisodeDataset, keys: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Observation keys the policy will read (state + cameras by default) and their per-step shapes."""
    available = [k for k in ds.keys if k == STATE_KEY or k.startswith(IMAGE_PREFIX)]
    keys = keys or available
    missing = [k for k in keys if k not in ds.keys]
    if missing:
        raise ConfigError(f"dataset {ds.path} has no observation key(s) {missing}; it has {ds.keys}")
    return {k: tuple(ds.array(k).shape[1:]) for k in keys}


def make_env_for(cfg_env: dict | None, ds: EpisodeDataset) -> RobotEnv | None:
    if cfg_env:
        return make_env(dict(cfg_env))
    info = ds.env_info
    return make_env(info.name, **info.config) if info else None


def batches(loader: torch.utils.data.DataLoader) -> Iterator[dict[str, Any]]:
    while True:
        yield from loader


def to_policy_batch(sample: dict[str, Any], obs_keys: list[str]) -> dict[str, Any]:
    """SequenceDataset item/batch -> {"obs": {key: (B, n_obs, ...)}, "action": (B, horizon, A)}."""
    return {"obs": {k: sample[k] for k in obs_keys}, ACTION_KEY: sample[ACTION_KEY]}


def save_curves(path: Path, losses: list[tuple[int, float]], evals: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    if losses:
        ax1.plot(*zip(*losses))
    ax1.set(xlabel="step", ylabel="train loss", yscale="log", title="loss")
    if evals:
        ax2.plot(*zip(*evals), marker="o")
    ax2.set(xlabel="step", ylabel="success rate", ylim=(-0.05, 1.05), title="eval success")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg: TrainBCConfig) -> dict[str, Any]:
    """Train, evaluate, checkpoint; returns the metrics dict also written to metrics.json."""
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    ds = EpisodeDataset(cfg.dataset)
    if ds.n_episodes == 0:
        raise ConfigError(f"dataset {cfg.dataset} has no committed episodes")
    obs_shapes = dataset_obs_shapes(ds, cfg.policy.obs_keys)
    action_dim = int(ds.array(ACTION_KEY).shape[1])
    env = make_env_for(cfg.env, ds)
    if env is not None:  # fail before training, not after, if the data cannot drive this env
        check_env_compatible({"obs_shapes": obs_shapes, "action_dim": action_dim,
                              "env": {"name": f"dataset {cfg.dataset}"}}, env, where=f"dataset {cfg.dataset}")

    policy = build_policy(cfg.policy, obs_shapes, action_dim)
    n_steps = ds.n_steps if cfg.max_episodes is None else int(ds.episode_ends[min(cfg.max_episodes, ds.n_episodes) - 1])
    stats_keys = [k for k in (STATE_KEY, ACTION_KEY) if k in policy.normalizer.dims]
    policy.fit_normalizer({k: ds.array(k)[:n_steps] for k in stats_keys})
    policy.to(device)
    seq = SequenceDataset(cfg.dataset, keys=[*obs_shapes, ACTION_KEY], n_obs=cfg.policy.n_obs,
                          horizon=cfg.policy.horizon, episodes=cfg.max_episodes)
    loader = torch.utils.data.DataLoader(seq, batch_size=cfg.batch_size, shuffle=True, drop_last=len(seq) > cfg.batch_size,
                                         num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
    trainer = Trainer(policy, cfg.policy.optim, cfg.steps)

    out = Path(cfg.out_dir or f"outputs/train_bc/{time.strftime('%Y%m%d-%H%M%S')}_{cfg.policy.kind}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    tb = SummaryWriter(str(out / "tb"))
    env_meta = env_info_dict(env.env_info) if env is not None else env_info_dict(ds.env_info)
    meta = {"dataset": str(cfg.dataset), "n_episodes": ds.n_episodes if cfg.max_episodes is None else min(cfg.max_episodes, ds.n_episodes)}
    losses: list[tuple[int, float]] = []
    evals: list[tuple[int, float]] = []
    best = -1.0
    it = batches(loader)
    bar = tqdm(range(1, cfg.steps + 1), desc=f"train {cfg.policy.kind}", disable=not cfg.progress)
    running = []
    for step in bar:
        running.append(trainer.step(to_policy_batch(next(it), list(obs_shapes))))
        if step % cfg.log_every == 0 or step == cfg.steps:
            loss = float(np.mean(running))
            running.clear()
            losses.append((step, loss))
            tb.add_scalar("train/loss", loss, step)
            tb.add_scalar("train/lr", trainer.sched.get_last_lr()[0], step)
            bar.set_postfix(loss=f"{loss:.4f}")
        periodic = cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps
        if env is not None and periodic and cfg.eval_episodes > 0:
            res = evaluate(trainer.eval_policy, env, cfg.eval_episodes, seed=10_000 + step)
            evals.append((step, res.success_rate))
            tb.add_scalar("eval/success_rate", res.success_rate, step)
            tqdm.write(f"step {step}: {res.summary()}")
            if res.success_rate > best:
                best = res.success_rate
                save_policy(trainer.eval_policy, out / "checkpoints" / "best", env_meta, step=step, eval=res.to_dict(), **meta)
        if cfg.eval_every and step % cfg.eval_every == 0:
            save_policy(trainer.eval_policy, out / "checkpoints" / "last", env_meta, step=step, **meta)

    final: dict[str, Any] | None = None
    if env is not None and cfg.final_eval_episodes > 0:
        res = evaluate(trainer.eval_policy, env, cfg.final_eval_episodes, seed=10_000, progress=cfg.progress)
        final = res.to_dict()
        evals.append((cfg.steps, res.success_rate))
        tb.add_scalar("eval/success_rate", res.success_rate, cfg.steps)
        print(f"final eval on {env.name}: {res.summary()}")
        if res.success_rate >= best:  # the final weights win ties: they are the most trained
            save_policy(trainer.eval_policy, out / "checkpoints" / "best", env_meta, step=cfg.steps, eval=final, **meta)
    save_policy(trainer.eval_policy, out / "checkpoints" / "last", env_meta, step=cfg.steps, eval=final, **meta)
    tb.close()
    save_curves(out / "curves.png", losses, evals)
    metrics = {"out_dir": str(out), "losses": losses, "evals": evals, "final_eval": final}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"checkpoint: {out / 'checkpoints' / ('best' if (out / 'checkpoints' / 'best').exists() else 'last')}")
    return metrics


def main(argv: list[str]) -> int:
    cfg = load("train_bc", argv, TrainBCConfig)
    if not cfg.dataset:
        raise ConfigError("train-bc needs dataset=<path to a zarr episode dataset>")
    run(cfg)
    return 0
