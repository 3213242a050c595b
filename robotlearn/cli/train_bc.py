"""`robotlearn train-bc policy=bc_mlp|diffusion dataset=<zarr> [env=sim/lift] steps=2000`.

Trains a base policy on an episode dataset, evaluates it in the env every
`eval_every` steps, logs to TensorBoard, and writes under `out_dir`:
checkpoints/{last,best}/ (safetensors + config.json), metrics.json, curves.png.
The env defaults to the one recorded in the dataset. `keys='{img: images/front}'` reads a
dataset's arrays under robotlearn names (robotlearn/data/keys.py), e.g. a diffusion_policy zarr's cameras.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.config import check_ranges
from robotlearn.data import DatasetError, EpisodeDataset, SequenceDataset
from robotlearn.envs import make_env
from robotlearn.data.keys import array_roles, default_obs_keys, unsupported_obs_keys, unused_camera_warnings
from robotlearn.envs.interface import STATE_KEY, RobotEnv
from robotlearn.policies.checkpoint import (
    CheckpointError,
    PolicyEnvMismatchError,
    build_policy,
    check_env_compatible,
    env_info_dict,
    save_policy,
)
from robotlearn.policies.chunked import ACTION_KEY, ChunkedPolicy
from robotlearn.policies.config import PolicyConfig
from robotlearn.policies.rollout import evaluate
from robotlearn.policies.training import Trainer
from robotlearn.progress import progress_bar, progress_mode

# Mistakes a user can fix from the message alone: printed without a traceback.
USER_ERRORS = (ConfigError, DatasetError, CheckpointError, PolicyEnvMismatchError, FileNotFoundError, KeyError)


@dataclass
class TrainBCConfig:
    dataset: Optional[str] = None  # path to a zarr episode dataset (required)
    keys: Optional[dict[str, str]] = None  # read dataset arrays under robotlearn names: {img: images/front, agent_pos: state}
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    env: Optional[dict[str, Any]] = None  # hydra `env=` group; None: the env recorded in the dataset
    steps: int = 2000
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"  # auto: cuda if available
    max_episodes: Optional[int] = None  # train on the first N episodes only
    log_every: int = 50
    eval_every: int = 500  # 0: no periodic eval
    eval_episodes: int = 5
    final_eval_episodes: int = 20
    out_dir: Optional[str] = None  # default outputs/train_bc/<time>_<kind>
    progress: str = "auto"  # auto | bar | lines | off (robotlearn/progress.py); true = auto, false = off

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)
        check_ranges(self, "", steps="[1, inf)", batch_size="[1, inf)", log_every="[1, inf)", eval_every="[0, inf)",
                     eval_episodes="[0, inf)", final_eval_episodes="[0, inf)")
        if self.max_episodes is not None:
            check_ranges(self, "", max_episodes="[1, inf)")


def dataset_obs_shapes(ds: EpisodeDataset, keys: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Observation keys the policy will read (state + cameras by default) and their per-step shapes."""
    keys = keys or default_obs_keys(ds.keys)
    missing = [k for k in keys if k not in ds.keys]
    if missing:
        raise ConfigError(f"dataset {ds.path} has no observation key(s) {missing}; it has {ds.keys}")
    unsupported = unsupported_obs_keys(keys)
    if unsupported:
        k = unsupported[0]
        raise ConfigError(f"policy.obs_keys {unsupported}: a policy reads 'state' and 'images/<cam>' only; "
                          f"read other arrays under those names with keys='{{{k}: images/{k.replace('/', '_')}}}' "
                          f"or keys='{{{k}: state}}'")
    if not keys:
        raise ConfigError(f"dataset {ds.path} has no 'state' or 'images/<cam>' array for a policy to read (it has "
                          f"{ds.keys}); name its observations with keys='{{<array>: state, <camera array>: images/<cam>}}'")
    return {k: tuple(ds.array(k).shape[1:]) for k in keys}


def obs_warnings(ds: EpisodeDataset, obs_keys: list[str]) -> list[str]:
    """Arrays that look like cameras but that the policy will not read."""
    schema = {k: (tuple(ds.array(k).shape[1:]), ds.array(k).dtype) for k in ds.keys}
    return unused_camera_warnings(schema, array_roles(schema, obs_keys))


def make_env_for(cfg_env: dict | None, ds: EpisodeDataset) -> RobotEnv | None:
    if cfg_env:
        return make_env(dict(cfg_env))
    info = ds.env_info
    return make_env(info.name, **info.config) if info else None


def sample_batch(seq: SequenceDataset, batch_size: int, rng: np.random.Generator) -> dict[str, Any]:
    """Random windows (with replacement): {"obs": {key: (B, n_obs, ...)}, "action": (B, horizon, A)}.

    Padded action rows (past the episode end) repeat the last action and are kept as targets:
    the policy learns to hold still once the task is done, as in diffusion_policy.
    """
    b = seq.get_batch(rng.integers(0, len(seq), batch_size))
    return {"obs": {k: torch.from_numpy(b[k]) for k in seq.obs_keys}, ACTION_KEY: torch.from_numpy(b[ACTION_KEY])}


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


@dataclass
class TrainResult:
    policy: ChunkedPolicy  # the evaluated/saved weights (EMA copy when enabled)
    metrics: dict[str, Any]  # also in <out_dir>/metrics.json
    out_dir: Path


def run(cfg: TrainBCConfig) -> TrainResult:
    """Train, evaluate periodically, checkpoint; the eval env (a ROS 2 node, for a robot) is closed at the end."""
    with ExitStack() as closing:
        return _run(cfg, closing)


def _run(cfg: TrainBCConfig, closing: ExitStack) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    ds = EpisodeDataset(cfg.dataset, key_map=cfg.keys)
    if ds.n_episodes == 0:
        raise ConfigError(f"dataset {cfg.dataset} has no committed episodes")
    obs_shapes = dataset_obs_shapes(ds, cfg.policy.obs_keys)
    for w in obs_warnings(ds, list(obs_shapes)):
        print(f"warning: {w}")
    action_dim = int(ds.array(ACTION_KEY).shape[1])
    env = make_env_for(cfg.env, ds)
    if env is not None:  # fail before training, not after, if the data cannot drive this env
        closing.callback(env.close)
        recorded = env_info_dict(ds.env_info)
        check_env_compatible({"obs_shapes": obs_shapes, "action_dim": action_dim, "env": recorded}, env,
                             where=f"dataset {cfg.dataset}")

    policy = build_policy(cfg.policy, obs_shapes, action_dim)
    n_steps = ds.n_steps if cfg.max_episodes is None else int(ds.episode_ends[min(cfg.max_episodes, ds.n_episodes) - 1])
    stats_keys = [k for k in (STATE_KEY, ACTION_KEY) if k in policy.normalizer.dims]
    policy.fit_normalizer({k: ds.array(k)[:n_steps] for k in stats_keys})
    policy.to(device)
    seq = SequenceDataset(ds, n_obs=cfg.policy.n_obs, horizon=cfg.policy.horizon, obs_keys=list(obs_shapes),
                          episodes=cfg.max_episodes)
    rng = np.random.default_rng(cfg.seed)
    trainer = Trainer(policy, cfg.policy.optim, cfg.steps)

    out = Path(cfg.out_dir or f"outputs/train_bc/{time.strftime('%Y%m%d-%H%M%S')}_{cfg.policy.kind}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    tb = SummaryWriter(str(out / "tb"))
    env_meta = env_info_dict(env.env_info) if env is not None else env_info_dict(ds.env_info)
    meta = {"dataset": str(cfg.dataset), "n_episodes": ds.n_episodes if cfg.max_episodes is None else min(cfg.max_episodes, ds.n_episodes)}
    if cfg.keys:
        meta["keys"] = dict(cfg.keys)
    losses: list[tuple[int, float]] = []
    evals: list[tuple[int, float]] = []
    best = -1.0
    bar = progress_bar(range(1, cfg.steps + 1), desc=f"train {cfg.policy.kind}", unit="step", mode=cfg.progress)
    running: list[float] = []
    for step in bar:
        try:
            running.append(trainer.step(sample_batch(seq, cfg.batch_size, rng)))
        except KeyboardInterrupt:  # keep what was learned so far, then stop
            save_policy(trainer.eval_policy, out / "checkpoints" / "last", env_meta, step=step - 1, interrupted=True, **meta)
            print(f"\ninterrupted at step {step}: saved {out / 'checkpoints' / 'last'}")
            raise
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
            bar.write(f"step {step}: {res.summary()}")
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
    return TrainResult(trainer.eval_policy, metrics, out)


def main(argv: list[str]) -> int:
    try:
        cfg = load("train_bc", argv, TrainBCConfig)
        if not cfg.dataset:
            raise ConfigError("train-bc needs dataset=<path to a zarr episode dataset>")
        run(cfg)
    except USER_ERRORS as e:
        fail(str(e))
    return 0
