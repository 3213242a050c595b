"""`robotlearn finetune base=<checkpoint|expert[:noise]|zero> env=sim/<task> demos=<zarr> [rl=cpu] [runtime=ray]`.

Residual off-policy RL on a frozen base with asynchronous actors and a learner
(local processes by default, `runtime=ray` to scale out). Every online episode
lands in `<out>/online.zarr`; the learner checkpoints to `<out>/checkpoint`, so
re-running the same command resumes. At the end the frozen base and base +
residual are evaluated side by side and the learning curve is saved as a PNG.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig


@dataclass
class FinetuneConfig:
    env: Optional[dict[str, Any]] = None  # hydra env group (_target_ + kwargs)
    rl: ResidualConfig = field(default_factory=ResidualConfig)
    runtime: Optional[dict[str, Any]] = None  # configs/runtime/<name>.yaml (local | ray)
    base: str = "zero"
    demos: Optional[str] = None
    out: str = "runs/finetune"
    env_steps: int = 20000
    eval_episodes: int = 50
    eval_seed: int = 100_000
    seed: int = 0
    match_learner: float = 0.0  # sim only: >0 paces actors at this fraction of the learner's measured rate / UTD
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)


def load_config(argv: list[str], config_name: str = "finetune") -> FinetuneConfig:
    """Hydra compose, validated; `env` and `runtime` are free-form groups (`_target_`/`name` + kwargs)."""
    cfg = load(config_name, argv, FinetuneConfig)
    cfg.runtime = cfg.runtime or {"name": "local"}
    if not cfg.env:
        raise ConfigError("finetune needs env=<name>, e.g. env=sim/reach")
    return cfg


def run(cfg: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune, then evaluate base vs base + residual; writes everything under cfg.out."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    n_actors = int(cfg.runtime.get("num_actors", 1))
    actor_cfg = dataclasses.replace(cfg.actor, max_env_steps=-(-cfg.env_steps // n_actors))
    if cfg.match_learner > 0:
        actor_cfg.pace_hz = matched_pace(cfg, n_actors)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    check_base(cfg)
    if cfg.runtime.get("name") == "ray":
        from robotlearn.runtime.ray_runtime import launch

        result = launch(dataclasses.replace(cfg, actor=actor_cfg), progress=cfg.learner.progress)
    elif cfg.runtime.get("name", "local") == "local":
        from robotlearn.runtime.local import run_local

        result = run_local(cfg.env, cfg.base, cfg.rl, cfg.learner, actor_cfg, n_actors=n_actors, demos=cfg.demos,
                           learner_threads=int(cfg.runtime.get("learner_threads", 1)),
                           learner_in_process=bool(cfg.runtime.get("learner_in_process", True)))
    else:
        raise ConfigError(f"unknown runtime {cfg.runtime.get('name')!r}: use runtime=local or runtime=ray")
    summary = {k: v for k, v in result.items() if k not in ("episodes", "heartbeats")}
    summary["actors"] = {a: st for a, (_, st) in result.get("heartbeats", {}).items()}
    episodes = result.get("episodes", [])
    print(f"finetune: {summary['env_steps']} env steps, {summary['updates']} updates, weights v{summary['version']}, "
          f"learner {summary['learner_updates_per_s']:.1f} upd/s, env {summary['env_steps_per_s']:.1f} steps/s")
    if cfg.eval_episodes > 0:
        summary["eval"] = evaluate_run(cfg, out, episodes)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def check_base(cfg: FinetuneConfig) -> None:
    """Build the base here once, so a bad spec fails before any process starts."""
    from robotlearn.envs import make_env
    from robotlearn.rl.bases import make_base

    env = make_env(dict(cfg.env))
    try:
        make_base(cfg.base, env, seed=cfg.seed)
    finally:
        env.close()


def matched_pace(cfg: FinetuneConfig, n_actors: int) -> float:
    """Steps/s per actor that keep the UTD: a sim can outrun any learner, a robot cannot.

    Measures the learner's update rate for this recipe here (a second or two), then
    paces actors at `match_learner` x rate / UTD / actors. Actors still never wait.
    """
    import torch

    from robotlearn.envs import make_env
    from robotlearn.runtime.learner import measure_update_rate

    env = make_env(dict(cfg.env))
    s, a = env.observation_space["state"].shape[0], env.action_space.shape[0]
    env.close()
    threads = torch.get_num_threads()
    if cfg.runtime.get("learner_in_process", True):
        torch.set_num_threads(1)  # the in-process learner shares the machine with the actor processes
    ups = measure_update_rate(cfg.rl, s, a, cfg.learner.device or None)
    torch.set_num_threads(threads if not cfg.runtime.get("learner_in_process", True) else 1)
    hz = cfg.match_learner * ups / cfg.rl.utd / n_actors
    print(f"finetune: learner ~{ups:.0f} updates/s here -> actors paced at {hz:.1f} steps/s each (UTD {cfg.rl.utd})")
    return hz


def evaluate_run(cfg: FinetuneConfig, out: Path, episodes: list[dict]) -> dict[str, Any]:
    from robotlearn.envs import make_env
    from robotlearn.rl.bases import make_base
    from robotlearn.rl.evaluate import compare, format_comparison, load_residual, plot_learning_curve

    env = make_env(dict(cfg.env))
    result = compare(env, make_base(cfg.base, env, seed=cfg.seed), load_residual(out), cfg.eval_episodes,
                     seed=cfg.eval_seed, progress=cfg.learner.progress)
    env.close()
    (out / "eval.json").write_text(json.dumps(result, indent=2))
    print(format_comparison(result))
    if episodes:
        png = plot_learning_curve(episodes, out / "learning_curve.png", title=f"{result['env']} base={cfg.base}",
                                  base_success=result["base"]["success_rate"],
                                  final_success=result["base+residual"]["success_rate"])
        print(f"learning curve: {png}")
    print(f"run folder: {out} (tensorboard --logdir {out / 'tb'})")
    return result


USER_ERRORS = (ConfigError, FileNotFoundError, FileExistsError, KeyError, ValueError, RuntimeError)


def main(argv: list[str]) -> int:
    try:
        run(load_config(argv))
    except USER_ERRORS as e:
        fail(str(e))
    return 0
