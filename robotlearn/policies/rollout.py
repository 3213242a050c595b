"""Evaluate any BasePolicy on any RobotEnv: success rate with a Wilson 95% interval, optional frames.

Used by `robotlearn eval`, the periodic eval in `train-bc`, and the benchmark.
Chunks are executed with the contract's ChunkStepper, so what is measured is
exactly what the residual learner will later step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robotlearn.envs.interface import IMAGE_PREFIX, RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper
from robotlearn.progress import progress_bar
from robotlearn.runtime.messages import EvalEpisode


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial rate (sane at 0/n and n/n, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EvalResult:
    episodes: int
    successes: int
    returns: list[float]
    lengths: list[int]
    frames: list[list[np.ndarray]] = field(default_factory=list, repr=False)  # per recorded episode
    env_successes: int | None = None  # the env's own detector, when the reward came from another source
    seeds: list[int] = field(default_factory=list)  # per episode, as `returns` and `lengths`
    success: list[bool] = field(default_factory=list)

    def add(self, ep: EvalEpisode) -> None:
        """Count one finished episode (in the order of the seeds)."""
        self.successes += int(ep.success)
        if ep.env_success is not None:
            self.env_successes = (self.env_successes or 0) + int(ep.env_success)
        self.returns.append(ep.ret)
        self.lengths.append(ep.length)
        self.seeds.append(ep.seed)
        self.success.append(bool(ep.success))
        if ep.frames is not None:
            self.frames.append(list(ep.frames))

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, self.episodes)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def summary(self) -> str:
        lo, hi = self.interval
        env = "" if self.env_successes is None else \
            f" (the env's own detector: {self.env_successes}/{self.episodes} = {self.env_successes / self.episodes:.1%})"
        return (f"success {self.successes}/{self.episodes} = {self.success_rate:.1%} "
                f"(95% CI {lo:.1%}-{hi:.1%}){env}, mean return {np.mean(self.returns):.3f}, "
                f"mean length {np.mean(self.lengths):.1f}")

    def to_dict(self, per_episode: bool = False) -> dict:
        lo, hi = self.interval
        out = {"episodes": self.episodes, "successes": self.successes, "success_rate": self.success_rate,
               "ci95": [lo, hi], "mean_return": float(np.mean(self.returns)),
               "mean_length": float(np.mean(self.lengths))}
        if self.env_successes is not None:
            out["env_success_rate"] = self.env_successes / max(1, self.episodes)
        if per_episode:
            out["per_episode"] = {"seed": self.seeds, "success": self.success, "return": self.returns,
                                  "length": self.lengths}
        return out


def frame_of(env: RobotEnv, obs: dict[str, np.ndarray], camera: str | None) -> np.ndarray:
    """A video frame: the env's own camera render if it has one, else an image observation."""
    if hasattr(env, "render_camera"):
        return env.render_camera(camera or "front")
    keys = sorted(k for k in obs if k.startswith(IMAGE_PREFIX))
    key = IMAGE_PREFIX + camera if camera else (keys[0] if keys else None)
    if key not in obs:
        raise ValueError(f"cannot record video on {env.name}: no render_camera() and no image observation {key!r}")
    return obs[key]


def eval_episode(env: RobotEnv, stepper: ChunkStepper, seed: int, record: bool = False,
                 camera: str | None = None) -> EvalEpisode:
    """The episode that reset seed `seed` starts, with the policy seeded from it too (`ChunkStepper.reset`):
    its outcome depends on nothing else, so it is the same in any process (`eval num_envs=N`)."""
    obs, info = env.reset(seed=seed)
    stepper.reset(seed=seed)
    frames = [] if record else None
    ret, length, success, done = 0.0, 0, bool(info.get("success")), False
    env_success = None if "env_success" not in info else bool(info["env_success"])
    while not done:
        if frames is not None:
            frames.append(frame_of(env, obs, camera))
        obs, reward, terminated, truncated, info = env.step(stepper.next_action(obs))
        ret += reward
        length += 1
        success = success or bool(info.get("success"))
        if "env_success" in info:  # a learned reward: keep the env's own verdict beside it
            env_success = bool(env_success) or bool(info["env_success"])
        done = terminated or truncated
    if frames is not None:
        frames.append(frame_of(env, obs, camera))
    return EvalEpisode(seed, success, ret, length, env_success, None if frames is None else np.stack(frames))


def evaluate(
    policy: BasePolicy,
    env: RobotEnv,
    episodes: int,
    seed: int = 0,
    record_episodes: int = 0,
    camera: str | None = None,
    progress: str | bool = False,
) -> EvalResult:
    """Run `episodes` episodes (reset seeds seed, seed+1, ...) and count info['success']."""
    stepper = ChunkStepper(policy)
    res = EvalResult(episodes, 0, [], [])
    for ep in progress_bar(range(episodes), desc=f"eval {env.name}", unit="ep", mode=progress, leave=False):
        res.add(eval_episode(env, stepper, seed + ep, ep < record_episodes, camera))
    return res
