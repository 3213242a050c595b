"""The actor loop: step the env at control rate with base + residual, ship finished episodes.

Transport-agnostic: local processes, ROS 2 and Ray all call `run_actor` with their
own `ActorTransport`. The loop never waits for the learner: weights are polled
(non-blocking) between steps, episodes are handed to the transport as bytes.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY, RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper
from robotlearn.rl.residual import ResidualConfig, ResidualPolicy
from robotlearn.runtime.messages import decode_weights, encode_batch
from robotlearn.runtime.transport import ActorTransport

StopFlag = Callable[[], bool] | Any  # a callable, or anything with is_set() (threading/multiprocessing Event)


@dataclass
class ActorConfig:
    actor_id: str = "actor-0"
    seed: int = 0  # env reset seeds are seed, seed+1, ...; also the exploration-noise seed
    max_env_steps: int = 0  # stop after the episode in which this many steps were taken (0 = until stopped)
    pace_hz: float = -1.0  # steps per second: -1 = the env's control_hz, 0 = as fast as possible
    heartbeat_s: float = 1.0  # seconds between heartbeats
    n_action_steps: int = 0  # base chunk steps executed before re-querying the base (0 = whole chunk)
    warmup_env_steps: int = -1  # this actor's base + uniform-noise steps (-1 = ResidualConfig.warmup_env_steps)


def _should_stop(stop: StopFlag | None) -> bool:
    if stop is None:
        return False
    return bool(stop.is_set() if hasattr(stop, "is_set") else stop())


class EpisodeRecorder:
    """Per-step lists -> one (T, ...) array per key, keyed like the zarr dataset."""

    def __init__(self) -> None:
        self.steps: dict[str, list] = {}

    def add(self, obs: dict[str, np.ndarray], action, base_action, reward: float, is_intervention: bool) -> None:
        row = {k: v for k, v in obs.items() if k == STATE_KEY or k.startswith(IMAGE_PREFIX)}
        row.update(action=action, base_action=base_action, reward=np.float32(reward),
                   is_intervention=np.bool_(is_intervention))
        for k, v in row.items():
            self.steps.setdefault(k, []).append(np.asarray(v))

    def __len__(self) -> int:
        return len(self.steps.get("reward", []))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.steps.items()}


def run_actor(transport: ActorTransport, env: RobotEnv, base: BasePolicy, rl: ResidualConfig,
              cfg: ActorConfig | None = None, stop: StopFlag | None = None) -> dict[str, Any]:
    """Act until `stop` is set or `cfg.max_env_steps` is reached; returns final stats.

    Each finished episode goes out as `encode_batch({state, [images/*], action,
    base_action, reward, is_intervention}, success=, terminated=, policy_version=,
    actor_id=, ...)`. A partial episode at stop is dropped, never sent.
    """
    cfg = cfg or ActorConfig()
    state_dim = int(env.observation_space[STATE_KEY].shape[0])
    action_dim = int(env.action_space.shape[0])
    policy = ResidualPolicy(state_dim, action_dim, rl, seed=cfg.seed)
    stepper = ChunkStepper(base, cfg.n_action_steps or None)
    warmup = rl.warmup_env_steps if cfg.warmup_env_steps < 0 else cfg.warmup_env_steps
    hz = env.control_hz if cfg.pace_hz < 0 else cfg.pace_hz
    period = 1.0 / hz if hz > 0 else 0.0

    steps = episodes = successes = 0
    recent: deque[float] = deque(maxlen=20)
    t_start = last_beat = time.time()
    next_tick = time.perf_counter()
    rec = EpisodeRecorder()
    obs, _ = env.reset(seed=cfg.seed)
    stepper.reset()
    ep_start, ep_version = time.time(), policy.version

    while not _should_stop(stop):
        update = transport.poll_weights()  # non-blocking; latest wins
        if update is not None:
            version, tensors, _ = decode_weights(update.payload)
            policy.load_weights(tensors, version)

        base_action = stepper.next_action(obs)  # (A,)
        mode = "warmup" if steps < warmup else "train"
        action = policy.act(obs[STATE_KEY], base_action, mode)
        next_obs, reward, terminated, truncated, info = env.step(action)
        executed = np.asarray(info.get("intervention_action", action), np.float32)  # a human took over
        rec.add(obs, executed, base_action, reward, info.get("is_intervention", False))
        obs = next_obs
        steps += 1

        if terminated or truncated:
            success = bool(info.get("success", False))
            payload = encode_batch(rec.arrays(), success=success, terminated=bool(terminated),
                                   policy_version=int(policy.version), policy_version_start=int(ep_version),
                                   actor_id=cfg.actor_id, start_time=ep_start, end_time=time.time(),
                                   warmup=mode == "warmup")
            transport.send_transitions(payload)
            episodes += 1
            successes += success
            recent.append(float(success))
            rec = EpisodeRecorder()
            if cfg.max_env_steps and steps >= cfg.max_env_steps:
                break
            obs, _ = env.reset(seed=cfg.seed + episodes)
            stepper.reset()
            ep_start, ep_version = time.time(), policy.version

        now = time.time()
        if now - last_beat >= cfg.heartbeat_s:
            transport.heartbeat(cfg.actor_id, _stats(steps, episodes, successes, recent, policy.version, now - t_start))
            last_beat = now
        if period:  # hold the control rate; never sleep to wait for the learner
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.perf_counter()  # fell behind: do not try to catch up with a burst

    stats = _stats(steps, episodes, successes, recent, policy.version, time.time() - t_start)
    transport.heartbeat(cfg.actor_id, {**stats, "done": True})
    return stats


def _stats(steps: int, episodes: int, successes: int, recent, version: int, elapsed: float) -> dict[str, Any]:
    return {"steps": steps, "episodes": episodes, "successes": successes, "version": int(version),
            "success_rate_recent": float(np.mean(recent)) if recent else 0.0,
            "steps_per_s": steps / max(elapsed, 1e-9)}
