"""`robotlearn finetune base=<checkpoint|expert[:noise]|zero> env=sim/<task> demos=<zarr> [rl=cpu] [runtime=ray]`.

Residual off-policy RL on a frozen base with asynchronous actors and a learner
(local processes by default, `runtime=ray` to scale out). Every online episode
lands in `<out>/online.zarr`; the learner checkpoints to `<out>/checkpoint`, so
re-running the same command resumes. `demo_keys='{agent_pos: state}'` reads demos whose arrays
have other names (robotlearn/data/keys.py). At the end the frozen base and base +
residual are evaluated side by side and the learning curve is saved as a PNG.
The run itself is a `RunSpec` (robotlearn/runtime/spec.py), assembled in
robotlearn/runtime/assembly.py like every other runtime's.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from robotlearn.cli.config import ConfigError, fail
from robotlearn.config import check_ranges, register_schema
from robotlearn.policies.checkpoint import CheckpointError
from robotlearn.runtime.assembly import RunError, check_base, launch
from robotlearn.runtime.spec import RunSpec, load_spec


@dataclass
class FinetuneConfig(RunSpec):
    """configs/finetune.yaml: the run, plus what the command does around it."""

    out: str = "runs/finetune"  # run folder: checkpoint/, online.zarr, tb/, eval.json, learning_curve.png
    env_steps: int = 20000  # online env steps over all actors (the learner's budget)
    eval_episodes: int = 50  # base vs base + residual at the end (0 = skip)
    eval_seed: int = 100_000  # reset seed of the first evaluation episode
    match_learner: float = 0.0  # sim only: >0 paces actors at this fraction of the learner's measured rate / UTD

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, "", env_steps="[1, inf)", eval_episodes="[0, inf)", match_learner="[0, inf)")


register_schema("finetune_schema", FinetuneConfig)  # configs/finetune.yaml composes onto it


def load_config(argv: list[str], config_name: str = "finetune") -> FinetuneConfig:
    """Hydra compose of configs/finetune.yaml + overrides, validated."""
    return load_spec(config_name, argv, FinetuneConfig)


def run(cfg: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune, then evaluate base vs base + residual; writes everything under cfg.out."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(**cfg.run_fields())
    check_base(spec)
    if cfg.match_learner > 0:
        spec.actor = dataclasses.replace(spec.actor, pace_hz=matched_pace(cfg))
    (out / "config.yaml").write_text(yaml.safe_dump({**json.loads(spec.to_json()), **{
        k: getattr(cfg, k) for k in ("out", "env_steps", "eval_episodes", "eval_seed", "match_learner")}},
        sort_keys=False))
    result = launch(spec, progress=cfg.learner.progress)
    summary = {k: v for k, v in result.items() if k not in ("episodes", "heartbeats")}
    summary["actors"] = {a: st for a, (_, st) in result.get("heartbeats", {}).items()}
    episodes = result.get("episodes", [])
    print(f"finetune: {summary['env_steps']} env steps, {summary['updates']} updates, weights v{summary['version']}, "
          f"learner {summary['learner_updates_per_s']:.1f} upd/s, env {summary['env_steps_per_s']:.1f} steps/s")
    if cfg.eval_episodes > 0:
        summary["eval"] = evaluate_run(cfg, out, episodes)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def matched_pace(cfg: FinetuneConfig) -> float:
    """Steps/s per actor that keep the UTD: a sim can outrun any learner, a robot cannot.

    Measures the learner's update rate for this recipe here (a second or two) with the
    learner's thread count, then paces actors at `match_learner` x rate / UTD / actors.
    Actors still never wait.
    """
    import torch

    from robotlearn.envs import describe_env, image_shapes
    from robotlearn.runtime.learner import measure_update_rate

    env = describe_env(cfg.env)
    s, a = env.observation_space["state"].shape[0], env.action_space.shape[0]
    cams = image_shapes(env.observation_space)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.runtime.learner_threads)
    ups = measure_update_rate(cfg.rl, s, a, cfg.learner.device or None, image_shapes=cams)  # drq: encodes frames
    torch.set_num_threads(threads)
    hz = cfg.match_learner * ups / cfg.rl.utd / cfg.runtime.num_actors
    print(f"finetune: learner ~{ups:.0f} updates/s here -> actors paced at {hz:.1f} steps/s each (UTD {cfg.rl.utd})")
    return hz


def evaluate_run(cfg: FinetuneConfig, out: Path, episodes: list[dict]) -> dict[str, Any]:
    from robotlearn.envs import make_env
    from robotlearn.policies.registry import make_base
    from robotlearn.rl.evaluate import (
        compare,
        format_comparison,
        load_residual,
        plot_learning_curve,
    )

    from robotlearn.runtime.assembly import image_encoder

    env = make_env(cfg.env)
    try:
        result = compare(env, make_base(cfg.base, env, seed=cfg.seed, **cfg.base_kwargs), load_residual(out),
                         cfg.eval_episodes, seed=cfg.eval_seed, progress=cfg.learner.progress,
                         features=image_encoder(cfg))
    finally:
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


# What a user can get wrong (a config, a path, a checkpoint, a crashed process of the run); anything else
# is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, FileExistsError, ValueError, CheckpointError, RunError)


def main(argv: list[str]) -> int:
    try:
        run(load_config(argv))
    except USER_ERRORS as e:
        fail(str(e))
    return 0
