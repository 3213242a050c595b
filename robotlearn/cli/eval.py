"""`robotlearn eval policy=<checkpoint> [env=sim/lift] episodes=50 [video=true]`.

Success rate with a 95% Wilson interval for a base policy checkpoint. The env
defaults to the one stored in the checkpoint; loading into an env whose
observations or action dim differ is a clear error (PolicyEnvMismatchError).

Episode i resets with seed + i, and a policy that samples (diffusion) is seeded from
that reset seed too, so `num_envs=N` (N env worker processes, each loading the
checkpoint: runtime/episode_workers.py) gives the same per-episode outcomes as 1.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.cli.train_bc import USER_ERRORS
from robotlearn.config import check_ranges
from robotlearn.envs import make_env
from robotlearn.rewards.sources import check_reward, with_reward
from robotlearn.envs.interface import RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper
from robotlearn.policies.checkpoint import load_policy, read_config, resolve_checkpoint
from robotlearn.policies.rollout import EvalResult, eval_episode, evaluate
from robotlearn.progress import progress_bar, progress_mode
from robotlearn.runtime.episode_workers import EpisodeWorkers, WorkerError, check_num_envs
from robotlearn.runtime.messages import EvalEpisode


@dataclass
class EvalConfig:
    checkpoint: Optional[str] = None  # also accepted as `policy=` on the command line
    env: Optional[dict[str, Any]] = None  # hydra `env=` group; None: the checkpoint's env
    episodes: int = 50
    seed: int = 100_000
    device: str = "auto"
    video: bool = False
    video_episodes: int = 2
    camera: str = "front"
    ddim_steps: Optional[int] = None  # diffusion only: override the checkpoint's DDIM sampling steps
    out: Optional[str] = None
    progress: str = "auto"  # auto | bar | lines | off (robotlearn/progress.py); true = auto, false = off
    residual: Optional[str] = None  # a finetune run folder: also eval base + residual, side by side (rl/evaluate.py)
    # Run a checkpoint on an env whose action spec or state layout differs from its training env's (shapes
    # must still fit). Off: such a checkpoint is refused, naming the first difference.
    allow_env_mismatch: bool = False
    # Success from: env (its own detector) | classifier:<dir> (a train-reward checkpoint) | label (a human's
    # label on a ROS 2 robot's label topic); the env's own detector, where it has one, is reported beside it
    reward: str = "env"
    # Env worker processes running episodes side by side (1: in this process), each loading the checkpoint; the
    # per-episode outcomes are the same for any N on CPU (a GPU's kernels may differ in the last bits between
    # processes). Not for a robot (a ROS 2 env), nor with residual=.
    num_envs: int = 1

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)
        check_reward(self.reward)
        check_ranges(self, "", num_envs="[1, inf)")


def env_spec(ckpt: Path, cfg_env: dict | None) -> tuple[str | dict, dict[str, Any]]:
    """(name or config, overrides) of the env to evaluate on: `env=`, else the checkpoint's own."""
    if cfg_env:
        return dict(cfg_env), {}
    stored = read_config(ckpt).get("env")
    if not stored:
        raise ConfigError(f"checkpoint {ckpt} records no env; pass env=<name>, e.g. env=sim/lift")
    return stored["name"], dict(stored.get("config", {}))


def load_eval(cfg: EvalConfig, ckpt: Path) -> tuple[RobotEnv, BasePolicy]:
    """The env (with its reward source) and the checkpoint's policy loaded into it."""
    name, overrides = env_spec(ckpt, cfg.env)
    env = make_env(name, **overrides)
    policy = load_policy(ckpt, env=env, device=None if cfg.device == "auto" else cfg.device,
                         allow_env_mismatch=cfg.allow_env_mismatch)
    env = with_reward(env, cfg.reward)
    if cfg.ddim_steps is not None:
        if not hasattr(policy, "num_inference_steps"):
            raise ConfigError(f"ddim_steps={cfg.ddim_steps}: {ckpt} is a {policy.kind} policy, not diffusion")
        policy.num_inference_steps = cfg.ddim_steps
    return env, policy


class EpisodeJob:
    """An eval env worker (num_envs > 1): the env and policy of an EvalConfig (as a dict); a call runs the
    episode of one reset seed and returns it as an encoded `EvalEpisode`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = EvalConfig(**config)
        self.env, policy = load_eval(self.cfg, resolve_checkpoint(self.cfg.checkpoint))
        self.stepper = ChunkStepper(policy)
        self.record_below = self.cfg.seed + (self.cfg.video_episodes if self.cfg.video else 0)

    def __call__(self, seed: int) -> bytes:
        return eval_episode(self.env, self.stepper, seed, seed < self.record_below, self.cfg.camera).encode()

    def close(self) -> None:
        self.env.close()


def evaluate_in_workers(cfg: EvalConfig, env_name: str) -> EvalResult:
    """`evaluate` over cfg.num_envs worker processes: the same episodes, tallied in seed order."""
    res = EvalResult(cfg.episodes, 0, [], [])
    bar = progress_bar(total=cfg.episodes, desc=f"eval {env_name}", unit="ep", mode=cfg.progress, leave=False)
    try:
        with EpisodeWorkers("eval", asdict(cfg), min(cfg.num_envs, cfg.episodes), f"eval {env_name}") as workers:
            for _, payload in workers.ordered(range(cfg.seed, cfg.seed + cfg.episodes)):
                res.add(EvalEpisode.decode(payload))
                bar.update(1)
    finally:
        bar.close()
    return res


def save_gif(path: Path, episodes: list[list], fps: float) -> None:
    import imageio.v2 as imageio

    frames = [f for ep in episodes for f in ep]
    imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)


def main(argv: list[str]) -> int:
    # `policy=<path>` would be read by hydra as the `policy` config group (train-bc's architectures).
    argv = ["checkpoint=" + a.split("=", 1)[1] if a.startswith("policy=") else a for a in argv]
    try:
        run(load("eval", argv, EvalConfig))
    except (*USER_ERRORS, WorkerError) as e:
        fail(str(e))
    return 0


def run(cfg: EvalConfig) -> dict[str, Any]:
    if not cfg.checkpoint:
        raise ConfigError("eval needs policy=<checkpoint dir> (or checkpoint=<dir>)")
    ckpt = resolve_checkpoint(cfg.checkpoint)
    if cfg.residual and cfg.num_envs > 1:
        raise ConfigError(f"eval residual=<run> evaluates base and base + residual in this process; "
                          f"drop num_envs={cfg.num_envs}")
    check_num_envs(env_spec(ckpt, cfg.env)[0], cfg.num_envs, "eval")

    env, policy = load_eval(cfg, ckpt)
    try:  # a ROS 2 env's node and executor thread live until closed
        if cfg.residual:
            return run_with_residual(cfg, ckpt, env, policy)
        if cfg.num_envs > 1:
            res = evaluate_in_workers(cfg, env.name)
        else:
            res = evaluate(policy, env, cfg.episodes, seed=cfg.seed,
                           record_episodes=cfg.video_episodes if cfg.video else 0, camera=cfg.camera,
                           progress=cfg.progress)
    finally:
        env.close()
    out = Path(cfg.out) if cfg.out else ckpt.parent / f"eval_{ckpt.name}"
    out.mkdir(parents=True, exist_ok=True)
    summary = {"checkpoint": str(ckpt), "env": env.name, **res.to_dict(per_episode=True)}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"{ckpt} on {env.name}: {res.summary()}")
    if cfg.video and res.frames:
        save_gif(out / "rollouts.gif", res.frames, env.control_hz)
        print(f"video: {out / 'rollouts.gif'}")
    print(f"results: {out / 'results.json'}")
    return summary


def run_with_residual(cfg: EvalConfig, ckpt: Path, env: RobotEnv, policy) -> dict[str, Any]:
    """`residual=<finetune run>`: the frozen base and base + residual on the same seeds (RL engineer's hook)."""
    from robotlearn.rl.evaluate import compare, format_comparison, load_residual
    from robotlearn.rl.features import frozen_encoder

    residual = load_residual(cfg.residual)
    features = frozen_encoder(residual.cfg, str(ckpt), policy)  # the encoder it was trained with, if any
    result = {"checkpoint": str(ckpt), "residual": cfg.residual,
              **compare(env, policy, residual, cfg.episodes, seed=cfg.seed, progress=cfg.progress,
                        features=features)}
    out = Path(cfg.out) if cfg.out else Path(cfg.residual) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(format_comparison(result))
    print(f"results: {out / 'results.json'}")
    return result
