"""Base-only vs base + residual, side by side, and the fine-tuning learning curve.

`BasePlusResidual` wraps a frozen base and a trained residual as one BasePolicy
(chunk size 1: the residual corrects every step), so both are measured by the
same `robotlearn.policies.rollout.evaluate` on the same reset seeds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from safetensors.numpy import load_file

from robotlearn.envs.interface import RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper
from robotlearn.rl.features import FrozenImageEncoder, rl_obs_state, rl_state
from robotlearn.rl.residual import ResidualConfig, ResidualPolicy


class BasePlusResidual:
    """base action (stepped through its chunks) + deterministic residual, one step at a time."""

    action_chunk_size = 1

    def __init__(self, base: BasePolicy, residual: ResidualPolicy, n_action_steps: int | None = None,
                 features: FrozenImageEncoder | None = None) -> None:
        self.stepper = ChunkStepper(base, n_action_steps)
        self.residual, self.features = residual, features
        self.action_dim = base.action_dim
        self.residual_abs: list[float] = []

    def reset(self) -> None:
        self.stepper.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        base_action = self.stepper.next_action(obs)
        learned = self.residual.features(obs)  # rl.encoder=drq
        state = rl_obs_state(obs, self.features) if learned is None else rl_state(np.asarray(obs["state"]), learned)
        action = self.residual.act(state, base_action, mode="eval")
        self.residual_abs.append(float(np.abs(action - base_action).mean()))
        return action[None]  # (1, A)


def load_residual(run_dir: str | Path) -> ResidualPolicy:
    """The trained residual actor from a finetune run (or its checkpoint/ folder)."""
    d = Path(run_dir)
    d = d / "checkpoint" if (d / "checkpoint").is_dir() else d
    if not (d / "learner.yaml").exists():
        raise FileNotFoundError(f"{run_dir} holds no residual learner checkpoint (expected {d / 'learner.yaml'})")
    meta = yaml.safe_load((d / "learner.yaml").read_text())
    shapes = {k: tuple(v) for k, v in (meta.get("image_shapes") or {}).items()} or None
    policy = ResidualPolicy(meta["state_dim"], meta["action_dim"], ResidualConfig(**meta["config"]), image_shapes=shapes)
    tensors = load_file(str(d / "learner.safetensors"))
    weights = {k[len("actor/"):]: v for k, v in tensors.items() if k.startswith("actor/")}
    weights.update({k: v for k, v in tensors.items() if k.startswith("encoder/")})  # rl.encoder=drq
    policy.load_weights(weights, meta["version"])
    return policy


def compare(env: RobotEnv, base: BasePolicy, residual: ResidualPolicy, episodes: int, seed: int = 100_000,
            progress: str | bool = False, features: FrozenImageEncoder | None = None) -> dict[str, Any]:
    """Success of the frozen base and of base + residual on identical reset seeds."""
    from robotlearn.policies.rollout import evaluate

    base_res = evaluate(base, env, episodes, seed=seed, progress=progress)
    agent = BasePlusResidual(base, residual, features=features)
    tuned = evaluate(agent, env, episodes, seed=seed, progress=progress)
    return {"env": env.name, "episodes": episodes, "seed": seed, "base": base_res.to_dict(),
            "base+residual": {**tuned.to_dict(), "residual_abs_mean": float(np.mean(agent.residual_abs or [0.0]))}}


def format_comparison(result: dict[str, Any]) -> str:
    rows = [f"{'policy':<15} {'success':>8} {'95% CI':>15} {'return':>7} {'length':>7}"]
    for name in ("base", "base+residual"):
        r = result[name]
        lo, hi = r["ci95"]
        rows.append(f"{name:<15} {r['success_rate']:>8.1%} {f'{lo:.0%}-{hi:.0%}':>15} "
                    f"{r['mean_return']:>7.3f} {r['mean_length']:>7.1f}")
    return f"{result['env']}, {result['episodes']} episodes (same seeds):\n" + "\n".join(rows)


def plot_learning_curve(episodes: list[dict[str, Any]], path: str | Path, title: str = "",
                        base_success: float | None = None, final_success: float | None = None,
                        window: int = 20) -> Path:
    """Training-episode success (rolling mean over `window` episodes) vs env steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([e["env_steps"] for e in episodes])
    succ = np.array([float(e["success"]) for e in episodes])
    roll = np.convolve(succ, np.ones(window), "valid") / window if len(succ) >= window else np.cumsum(succ) / np.arange(1, len(succ) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps[len(steps) - len(roll):], roll, label=f"training episodes (rolling {window}, with exploration)")
    if base_success is not None:
        ax.axhline(base_success, color="gray", ls="--", label=f"frozen base (eval) {base_success:.0%}")
    if final_success is not None:
        ax.axhline(final_success, color="green", ls=":", label=f"base + residual (eval) {final_success:.0%}")
    ax.set(xlabel="env steps", ylabel="success rate", ylim=(-0.02, 1.02), title=title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
