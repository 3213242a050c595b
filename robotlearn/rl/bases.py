"""Relabelling demos with the frozen base's actions (bases are built by `robotlearn.policies.registry`).

Every base is used only through the BasePolicy contract, stepped by a ChunkStepper,
exactly as the actor steps it.
"""
from __future__ import annotations

import numpy as np

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY
from robotlearn.policies.base import BasePolicy, ChunkStepper


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
