"""Building a frozen base from a spec string, and relabelling demos with its actions.

A spec is `zero` (RLPD-style from scratch), `expert` / `expert:<noise>` (the sim
task's scripted expert) or a path to a BC/diffusion checkpoint. Every base is
then used only through the BasePolicy contract, stepped by a ChunkStepper.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY, RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper, ZeroPolicy


def make_base(spec: str, env: RobotEnv, seed: int = 0) -> BasePolicy:
    """`zero` | `expert[:noise]` | checkpoint path -> a BasePolicy for `env`."""
    if spec == "zero":
        return ZeroPolicy(int(env.action_space.shape[0]))
    if spec == "expert" or spec.startswith("expert:"):
        if not hasattr(env, "make_expert"):
            raise ValueError(f"base=expert needs an env with make_expert(); {env.name} has none")
        noise = float(spec.split(":", 1)[1]) if ":" in spec else 0.0
        expert = env.make_expert(noise=noise, seed=seed)
        expert.privileged = True  # reads the live sim state: cannot be replayed over stored demos
        return expert
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"base {spec!r} is neither 'zero', 'expert[:noise]' nor an existing checkpoint path")
    from robotlearn.policies.checkpoint import load_policy

    return load_policy(str(path), env=env)


def episode_obs(episode: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
    """The observation dict at step t of a stored episode (state + any camera images)."""
    return {k: episode[k][t] for k in episode if k == STATE_KEY or k.startswith(IMAGE_PREFIX)}


def relabel_base_actions(episode: dict[str, np.ndarray], base: BasePolicy, n_action_steps: int | None = None) -> np.ndarray:
    """Run the base over one demo episode in order (reset first) -> its (T, A) actions.

    The chunked base keeps state (queued chunk, obs history), so it is reset per
    episode and fed every step, exactly as it would be when acting.
    """
    if STATE_KEY not in episode:
        raise KeyError(f"demo episode has no {STATE_KEY!r} key (keys: {sorted(episode)})")
    stepper = ChunkStepper(base, n_action_steps)
    stepper.reset()
    T = len(episode[STATE_KEY])
    out = np.stack([stepper.next_action(episode_obs(episode, t)) for t in range(T)]).astype(np.float32)  # (T, A)
    if not np.all(np.isfinite(out)):
        raise ValueError("base policy produced non-finite actions while relabelling a demo episode")
    return out
