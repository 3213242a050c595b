"""The base-policy contract: anything that maps an observation to a chunk of actions.

The residual learner treats every base (BC-MLP, diffusion, a scripted controller,
the zero base) as a black box through this contract. Actions are in the env's
normalised [-1, 1] space; a chunk is (T, A) with T = `action_chunk_size`.

A policy that draws random numbers while it acts (a noisy scripted expert, diffusion
sampling) also has `seed_episode(seed)`: rollouts call it after `reset()` with the
episode's reset seed (`ChunkStepper.reset(seed=...)`), so an episode's actions depend on
that seed alone, not on the episodes before it. That is what lets `collect` and `eval`
with `num_envs=N` and a resumed collection reproduce one uninterrupted process exactly.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class BasePolicy(Protocol):
    action_dim: int
    action_chunk_size: int  # actions executed open-loop per act() call

    def reset(self) -> None:
        """Clear internal state (observation history, queued chunk) between episodes."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One observation (unbatched dict) -> (action_chunk_size, action_dim) float32 chunk."""


class ZeroPolicy:
    """Always 0: residual RL on top of it is RL from scratch (the RLPD-style baseline)."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim
        self.action_chunk_size = 1

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros((1, self.action_dim), np.float32)


class ChunkStepper:
    """Executes a base policy's chunks one step at a time.

    `next_action(obs)` returns the base action for this control step, calling
    `policy.act` only when the current chunk is used up, so a per-step residual
    can correct each step from the current observation.
    """

    def __init__(self, policy: BasePolicy, n_action_steps: int | None = None) -> None:
        self.policy = policy
        self.n_action_steps = n_action_steps or policy.action_chunk_size
        self._chunk: np.ndarray | None = None
        self._i = 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; `seed` (its reset seed) also seeds a policy that samples (`seed_episode`)."""
        self.policy.reset()
        if seed is not None and hasattr(self.policy, "seed_episode"):
            self.policy.seed_episode(int(seed))
        self._chunk, self._i = None, 0

    def next_action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self._chunk is None or self._i >= min(self.n_action_steps, len(self._chunk)):
            self._chunk = np.asarray(self.policy.act(obs), np.float32)
            self._i = 0
        a = self._chunk[self._i]
        self._i += 1
        return a
