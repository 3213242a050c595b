"""`robotlearn expert env=sim/lift|all episodes=50 noise=[0.0,0.3,0.6]`: scripted-expert success table.

Shows what the noise knob does to demonstration quality before collecting: the
success rate (and mean episode length) per task per noise level. `env=all`
runs every `sim/` task; `env=a,b` a list of them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.envs import list_envs, make_env
from robotlearn.progress import progress_bar, progress_mode


@dataclass
class ExpertConfig:
    env: Optional[dict[str, Any]] = None
    episodes: int = 50
    noise: list[float] = field(default_factory=lambda: [0.0, 0.3, 0.6])
    seed: int = 0
    out: Optional[str] = None
    progress: str = "auto"  # auto | bar | lines | off (robotlearn/progress.py); true = auto, false = off

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)


def split_env_arg(argv: list[str]) -> tuple[list[str], list[str]]:
    """Pull `env=...` out of argv: `all` -> every sim task, `a,b` -> several (hydra would read a sweep)."""
    names, rest = [], []
    for a in argv:
        if a.startswith("env="):
            value = a.removeprefix("env=")
            names += [n for n in list_envs() if n.startswith("sim/")] if value == "all" else value.split(",")
        else:
            rest.append(a)
    return names, rest


def evaluate_expert(env, noise: float, episodes: int, seed: int, progress: str | bool, desc: str) -> dict:
    expert = env.make_expert(noise=noise, seed=seed)
    successes, lengths = [], []
    for i in progress_bar(range(episodes), desc=desc, unit="ep", mode=progress, leave=False):
        obs, info = env.reset(seed=seed + i)
        expert.reset()
        expert.seed_episode(seed + i)  # as collect seeds it: the table predicts `collect seed=<seed>`'s episodes
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(expert.act(obs)[0])
            done = term or trunc
        successes.append(bool(info["success"]))
        lengths.append(int(info["t"]))
    return {"success_rate": float(np.mean(successes)), "mean_length": float(np.mean(lengths)),
            "episodes": episodes}


def format_table(results: dict[str, dict[float, dict]], noises: list[float]) -> str:
    head = f"{'task':<18}" + "".join(f"{'noise=' + str(n):>14}" for n in noises)
    lines = [head, "-" * len(head)]
    for task, row in results.items():
        cells = "".join(f"{row[n]['success_rate']:>8.2f} ({row[n]['mean_length']:>3.0f})" for n in noises)
        lines.append(f"{task:<18}{cells}")
    lines.append("success rate (mean episode length in steps)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names, rest = split_env_arg(argv)
    try:
        cfg = load("expert", rest + ([f"env={names[0]}"] if names else []), ExpertConfig)
        names = names or ["sim/lift"]
        if cfg.episodes < 1 or not cfg.noise:
            raise ConfigError(f"need episodes >= 1 and at least one noise level, got {cfg.episodes}, {cfg.noise}")
        results: dict[str, dict[float, dict]] = {}
        for name in names:
            env_cfg = load("expert", rest + [f"env={name}"], ExpertConfig).env
            env = make_env(env_cfg or name)
            if not hasattr(env, "make_expert"):
                raise ConfigError(f"env {name!r} has no scripted expert; try env=all or one of the sim/ tasks")
            results[name] = {n: evaluate_expert(env, n, cfg.episodes, cfg.seed, cfg.progress, f"{name} noise={n}")
                             for n in cfg.noise}
            env.close()
    except (ConfigError, KeyError) as e:
        fail(str(e))
    print(format_table(results, cfg.noise))
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.out).write_text(json.dumps({t: {str(n): r for n, r in row.items()} for t, row in results.items()},
                                            indent=2))
    return 0
