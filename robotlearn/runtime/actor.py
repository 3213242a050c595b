"""The actor loop: step the env at control rate with base + residual, ship finished episodes.

Transport-agnostic: local processes, ROS 2 and Ray all call `run_actor` with their
own `ActorTransport` (`runtime/assembly.py` builds what it runs). The loop never
waits for the learner: weights are polled (non-blocking) between steps, episodes
are handed to the transport as encoded `Episode` messages.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from robotlearn.config import ConfigError, check_ranges
from robotlearn.envs.interface import (
    IMAGE_PREFIX,
    INFO_INTERVENTION,
    INFO_INTERVENTION_ACTION,
    INFO_SUCCESS,
    STATE_KEY,
    RobotEnv,
    image_shapes,
)
from robotlearn.policies.base import BasePolicy, ChunkStepper
from robotlearn.rl.features import FEATURES_KEY, FrozenImageEncoder, rl_state
from robotlearn.rl.residual import ResidualConfig, ResidualPolicy
from robotlearn.runtime.messages import Episode, decode_weights
from robotlearn.runtime.transport import ActorTransport

log = logging.getLogger(__name__)

StopFlag = Callable[[], bool] | Any  # a callable, or anything with is_set() (threading/multiprocessing Event)


@dataclass
class ActorConfig:
    actor_id: str = "actor"  # a run's actor i is named "<actor_id>-<i>"
    seed: int = 0  # env reset seeds are seed, seed+1, ...; also the exploration-noise seed (a run derives it)
    # Stop after the episode in which this many steps were taken (0 = until stopped; a run splits
    # learner.max_env_steps over its actors when this is 0).
    max_env_steps: int = 0
    episode_offset: int = 0  # reset seeds start at seed + this (a resumed run continues after its log)
    pace_hz: float = 0.0  # steps per second: 0 = as fast as possible, -1 = the env's control_hz
    heartbeat_s: float = 1.0  # seconds between heartbeats
    n_action_steps: int = 0  # base chunk steps executed before re-querying the base (0 = whole chunk)
    retry_on_env_error: bool = False  # after an EnvError (stale topic, refused reset): wait 1 s, new episode
    # A learner not heard from for this long (over ROS 2: its 1 Hz heartbeat) is reported, once; then
    # `on_learner_lost`: "continue" acts on the last weights, "hold" stops stepping the env (a robot's
    # watchdog holds it) until the learner is back. Transports that cannot tell (local, Ray) never trigger it.
    learner_timeout_s: float = 10.0
    on_learner_lost: str = "continue"
    # Sim only: hold (do not step) while the learner's backlog, as its latest weights report it (env steps
    # whose UTD x updates it has not made yet), exceeds this many steps, so a loaded CPU slows the actor
    # instead of lowering the UTD the recipe asked for. A hold ends when weights with a smaller backlog
    # arrive, or after learner_timeout_s without any. 0 = never hold; an env that paces itself (a robot)
    # never holds.
    max_lead_steps: int = 1000

    def __post_init__(self) -> None:
        check_ranges(self, "actor", max_env_steps="[0, inf)", episode_offset="[0, inf)", heartbeat_s="(0, inf)", n_action_steps="[0, inf)")
        check_ranges(self, "actor", learner_timeout_s="(0, inf)", max_lead_steps="[0, inf)")
        if self.on_learner_lost not in ("continue", "hold"):
            raise ConfigError(f"actor.on_learner_lost must be 'continue' or 'hold', got {self.on_learner_lost!r}")
        if self.pace_hz < 0 and self.pace_hz != -1:
            raise ConfigError(f"actor.pace_hz must be >= 0 or -1 (the env's control_hz), got {self.pace_hz}")


def _should_stop(stop: StopFlag | None) -> bool:
    if stop is None:
        return False
    return bool(stop.is_set() if hasattr(stop, "is_set") else stop())


class EpisodeRecorder:
    """Per-step lists -> one (T, ...) array per key, keyed like the zarr dataset."""

    def __init__(self) -> None:
        self.steps: dict[str, list] = {}

    def add(self, obs: dict[str, np.ndarray], action, base_action, reward: float, is_intervention: bool,
            features: np.ndarray | None = None) -> None:
        row = {k: v for k, v in obs.items() if k == STATE_KEY or k.startswith(IMAGE_PREFIX)}
        row.update(action=action, base_action=base_action, reward=np.float32(reward),
                   is_intervention=np.bool_(is_intervention))
        if features is not None:
            row[FEATURES_KEY] = features
        for k, v in row.items():
            self.steps.setdefault(k, []).append(np.asarray(v))

    def __len__(self) -> int:
        return len(self.steps.get("reward", []))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.steps.items()}


class Actor:
    """One env + frozen base + residual copy. `step()` is one control step; `run_actor` loops it.

    Kept as a class so a benchmark can drive exactly this code in lock-step with a learner.
    """

    def __init__(self, env: RobotEnv, base: BasePolicy, rl: ResidualConfig, cfg: ActorConfig,
                 features: FrozenImageEncoder | None = None) -> None:
        self.env, self.cfg, self.features = env, cfg, features
        state_dim = int(env.observation_space[STATE_KEY].shape[0]) + (features.dim if features else 0)
        self.policy = ResidualPolicy(state_dim, int(env.action_space.shape[0]), rl, seed=cfg.seed,
                                     image_shapes=image_shapes(env.observation_space))  # read with rl.encoder=drq
        self.stepper = ChunkStepper(base, cfg.n_action_steps or None)
        self.warmup = rl.warmup_env_steps
        self.learner_backlog = 0  # env steps the learner owes updates for, as of the last weights (max_lead_steps)
        self.steps = self.episodes = self.successes = 0
        self.recent: deque[float] = deque(maxlen=20)
        self.t_start = time.time()
        self._new_episode()

    def _new_episode(self) -> None:
        self.reset_seed = self.cfg.seed + self.cfg.episode_offset + self.episodes
        self.obs, _ = self.env.reset(seed=self.reset_seed)
        self.stepper.reset()
        self.policy.reset()
        self.rec = EpisodeRecorder()
        self.ep_start, self.ep_version = time.time(), self.policy.version

    def load_weights(self, payload: bytes) -> None:
        version, tensors, meta = decode_weights(payload)
        self.policy.load_weights(tensors, version)
        self.learner_backlog = meta.get("backlog_steps", 0)  # an int >= 0: checked by decode_weights

    def step(self) -> bytes | None:
        """One control step; returns the encoded episode when this step ended it (then resets)."""
        base_action = self.stepper.next_action(self.obs)  # (A,)
        mode = "warmup" if self.steps < self.warmup else "train"
        feats = None if self.features is None else self.features(self.obs)  # once per step, logged with it
        learned = self.policy.features(self.obs)  # rl.encoder=drq: the published encoder's (the learner re-encodes)
        action = self.policy.act(rl_state(self.obs[STATE_KEY], feats if learned is None else learned), base_action, mode)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        executed = np.asarray(info.get(INFO_INTERVENTION_ACTION, action), np.float32)  # a human took over
        self.rec.add(self.obs, executed, base_action, reward, info.get(INFO_INTERVENTION, False), feats)
        self.obs = next_obs
        self.steps += 1
        if not (terminated or truncated):
            return None
        success = bool(info.get(INFO_SUCCESS, False))
        payload = Episode(self.rec.arrays(), success=success, terminated=bool(terminated),
                          policy_version=int(self.policy.version), policy_version_start=int(self.ep_version),
                          actor_id=self.cfg.actor_id, start_time=self.ep_start, end_time=time.time(),
                          warmup=mode == "warmup", reward_source=self.env.reward_source,
                          seed=self.reset_seed).encode()
        self.episodes += 1
        self.successes += success
        self.recent.append(float(success))
        self._new_episode()
        return payload

    def stats(self) -> dict[str, Any]:
        return _stats(self.steps, self.episodes, self.successes, self.recent, self.policy.version,
                      time.time() - self.t_start)


def run_actor(transport: ActorTransport, env: RobotEnv, base: BasePolicy, rl: ResidualConfig,
              cfg: ActorConfig | None = None, stop: StopFlag | None = None,
              features: FrozenImageEncoder | None = None) -> dict[str, Any]:
    """Act until `stop` is set or `cfg.max_env_steps` is reached; returns final stats.

    Each finished episode goes out as one encoded `messages.Episode`. A partial
    episode at stop is dropped, never sent. An env that paces itself (a robot) is not
    paced again here, nor held for a learner that is behind (`cfg.max_lead_steps`).
    """
    cfg = cfg or ActorConfig()
    actor = Actor(env, base, rl, cfg, features)
    hz = 0.0 if env.paces_itself else env.control_hz if cfg.pace_hz < 0 else cfg.pace_hz
    period = 1.0 / hz if hz > 0 else 0.0
    last_beat, next_tick = time.time(), time.perf_counter()
    lost = False
    lead = 0 if env.paces_itself else cfg.max_lead_steps
    last_weights, held = time.monotonic(), 0.0
    while not _should_stop(stop):
        weights = transport.poll_weights()  # non-blocking; latest wins
        if weights is not None:
            actor.load_weights(weights)
            last_weights = time.monotonic()
        silence = transport.learner_silence()
        if silence is not None and (silence > cfg.learner_timeout_s) != lost:
            lost = not lost
            if lost:
                log.error("%s: no learner heartbeat for %.0f s; %s on weights v%d", cfg.actor_id, silence,
                          "holding (not stepping)" if cfg.on_learner_lost == "hold" else "acting", actor.policy.version)
            else:
                log.warning("%s: the learner is back", cfg.actor_id)
        if lost and cfg.on_learner_lost == "hold":
            time.sleep(0.05)
            next_tick = time.perf_counter()
            continue
        if lead and actor.learner_backlog > lead and time.monotonic() - last_weights < cfg.learner_timeout_s:
            t = time.monotonic()
            time.sleep(0.002)  # the learner is behind: let it catch up (sim only)
            held += time.monotonic() - t
            next_tick = time.perf_counter()
            if time.time() - last_beat >= cfg.heartbeat_s:
                transport.heartbeat(cfg.actor_id, {**actor.stats(), "held_for_learner_s": held})
                last_beat = time.time()
            continue
        payload = actor.step()
        if payload is not None:
            transport.send_episode(payload)
            if cfg.max_env_steps and actor.steps >= cfg.max_env_steps:
                break
        now = time.time()
        if now - last_beat >= cfg.heartbeat_s:
            transport.heartbeat(cfg.actor_id, actor.stats())
            last_beat = now
        if period:  # hold the control rate (waiting for the learner is max_lead_steps' hold, above)
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.perf_counter()  # fell behind: do not try to catch up with a burst
    stats = {**actor.stats(), "held_for_learner_s": held}
    transport.heartbeat(cfg.actor_id, {**stats, "done": True})
    return stats


def _stats(steps: int, episodes: int, successes: int, recent, version: int, elapsed: float) -> dict[str, Any]:
    return {"steps": steps, "episodes": episodes, "successes": successes, "version": int(version),
            "success_rate_recent": float(np.mean(recent)) if recent else 0.0,
            "steps_per_s": steps / max(elapsed, 1e-9)}
