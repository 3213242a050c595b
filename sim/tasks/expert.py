"""Privileged scripted experts with a noise knob.

An expert reads object/goal poses straight from the env (privileged), runs a
small phase machine and emits a normalised [dx, dy, dz, gripper] action
(chunk size 1). `noise` in [0, 1] degrades it the way a human demonstrator is
imperfect: Gaussian jitter on the motion, a per-episode aiming error (grasp
or goal offset) and, rarely, a gripper slip for a few steps. noise=0 is the
near-perfect expert. `seed_episode(seed)` draws an episode's noise from that seed
alone (collect and the expert table pass the episode's reset seed), so an episode is
the same whatever ran before it; without it the noise is one stream from `seed`.
"""
from __future__ import annotations

import numpy as np


NOISE_STREAM = 0x6E6F6973  # mixed into per-episode noise seeds, so they never equal the env's reset stream


class ScriptedExpert:
    """Base: subclasses implement `_episode_start()` and `_clean_action() -> (4,)`."""

    action_dim = 4
    action_chunk_size = 1
    jitter = 0.5  # motion jitter: standard deviation of the normalised xyz action at noise 1
    slip_p = 0.02  # probability per step, at noise 1, that the gripper command flips for 2-4 steps

    def __init__(self, env, noise: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= noise:
            raise ValueError(f"expert noise must be >= 0, got {noise}")
        self.env = env
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self._episode = -1
        self._slip = 0  # steps left of an accidental gripper opening

    def reset(self) -> None:
        self._episode = -1

    def seed_episode(self, seed: int) -> None:
        """This episode's noise from `seed` only (its reset seed; a stream apart from the env's own reset draws)."""
        self.rng = np.random.default_rng([NOISE_STREAM, int(seed)])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self._episode != self.env._episode:  # new episode, even if reset() was not called
            self._episode = self.env._episode
            self._slip = 0
            self._episode_start()
        a = np.asarray(self._clean_action(), dtype=np.float64)
        if self.noise > 0:
            a[:3] += self.rng.normal(0.0, self.jitter * self.noise, 3)
            if self._slip == 0 and self.slip_p > 0 and self.rng.random() < self.slip_p * self.noise:
                self._slip = int(self.rng.integers(2, 5))
            if self._slip > 0:
                self._slip -= 1
                a[3] = -a[3]
        return np.clip(a, -1.0, 1.0).astype(np.float32)[None]  # (1, 4)

    # --- helpers ----------------------------------------------------------
    def aim_error(self, scale: float) -> np.ndarray:
        """Per-episode xy aiming error, ~0 at noise 0 and up to a few cm at noise 1."""
        return np.array([*self.rng.normal(0.0, scale * self.noise, 2), 0.0])

    def move_to(self, target: np.ndarray, gripper: float, gain: float = 1.0) -> np.ndarray:
        """Proportional step towards `target` (normalised, saturating at max_delta), from where a zero action
        would hold the TCP (`ee_reference`: the measured TCP, or the integrated target)."""
        d = gain * (target - self.env.ee_reference) / self.env.max_delta
        n = np.abs(d).max()
        if n > 1.0:
            d = d / n
        return np.array([*d, gripper])

    def at(self, target: np.ndarray, tol: float) -> bool:
        return bool(np.linalg.norm(target - self.env.tcp_pos) < tol)

    def _episode_start(self) -> None:
        raise NotImplementedError

    def _clean_action(self) -> np.ndarray:
        raise NotImplementedError
