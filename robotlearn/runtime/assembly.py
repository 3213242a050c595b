"""Where a run is assembled: a `RunSpec` -> the actor and the learner it is made of.

The local, Ray and ROS 2 runtimes only start processes and carry bytes; each
process calls `build_actor(spec, index)` or `build_learner(spec)` here. This is
the only place that sets torch threads, derives per-actor seeds and step budgets,
makes the env and the base, and works out the spaces (the learner reads them from
the env's description, without starting a robot where the backend can describe
itself).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from robotlearn.envs import EnvDescription, EnvError, RobotEnv, describe_env, make_env
from robotlearn.policies.base import BasePolicy
from robotlearn.policies.registry import CHECKPOINT, base_entry, make_base, parse_base
from robotlearn.rewards.sources import with_reward
from robotlearn.rl.features import FrozenImageEncoder, frozen_encoder
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig, StopFlag, _should_stop, run_actor
from robotlearn.runtime.learner import LearnerConfig, run_learner
from robotlearn.runtime.spec import RunSpec
from robotlearn.runtime.transport import ActorTransport, LearnerTransport

log = logging.getLogger(__name__)


class RunError(RuntimeError):
    """A process of the run ended in an error (its traceback is in its own log or above)."""


def actor_name(spec: RunSpec, index: int) -> str:
    return f"{spec.actor.actor_id}-{index}"


def actor_seed(spec: RunSpec, index: int, restart: int = 0) -> int:
    """Env reset and exploration seed of actor `index` after `restart` restarts."""
    return spec.seed + 1000 * index + 100_000 * restart


def resume_point(spec: RunSpec) -> tuple[int, dict[str, int]]:
    """(env steps already in the run's online log, {actor id: last reset seed it logged}); (0, {}) for a
    fresh run. `learner.max_env_steps` is the run's total across restarts, so actors get what is left."""
    from robotlearn.data import EpisodeDataset

    path = Path(spec.learner.out_dir) / "online.zarr"
    if not spec.learner.resume or not path.exists():
        return 0, {}
    ds = EpisodeDataset(path)
    last: dict[str, int] = {}
    if "actor_id" in ds.meta_keys and "seed" in ds.meta_keys:
        names = ds.attrs.get("categories", {}).get("actor_id", [])
        for code, seed in zip(ds.meta_array("actor_id"), ds.meta_array("seed")):
            if 0 <= code < len(names) and seed >= 0:
                last[names[code]] = max(int(seed), last.get(names[code], -1))
    return ds.n_steps, last


def image_encoder(spec: RunSpec) -> FrozenImageEncoder | None:
    """The frozen image encoder the residual reads with rl.encoder=base (None with rl.encoder=none)."""
    name, arg = parse_base(spec.base)
    if spec.rl.encoder == "base" and not spec.rl.encoder_checkpoint and name != CHECKPOINT:
        raise ValueError(f"rl.encoder=base with base={spec.base!r}: that base has no image encoder; "
                         f"name a checkpoint with rl.encoder_checkpoint=<path>")
    return frozen_encoder(spec.rl, arg if name == CHECKPOINT else None)


@dataclass
class ActorParts:
    env: RobotEnv
    base: BasePolicy
    rl: ResidualConfig
    cfg: ActorConfig
    features: FrozenImageEncoder | None = None

    def run(self, transport: ActorTransport, stop: StopFlag | None = None) -> dict[str, Any]:
        """`run_actor` until stopped or its budget is spent; closes the transport and the env."""
        try:
            while True:
                try:
                    return run_actor(transport, self.env, self.base, self.rl, self.cfg, stop, self.features)
                except EnvError as e:  # stale topic, refused reset (e-stop), robot restarting
                    if not self.cfg.retry_on_env_error or _should_stop(stop):
                        raise
                    log.error("env error, retrying in 1 s with the current weights: %s", e)
                    transport.redeliver()  # the new actor loop starts from zero-init weights
                    _sleep_unless(stop, 1.0)
        finally:
            transport.close()
            self.env.close()


def build_actor(spec: RunSpec, index: int = 0, restart: int = 0) -> ActorParts:
    """Actor `index` of the run (its env, base, residual config, seeds and step budget).

    A restarted actor (`restart` > 0) gets fresh reset seeds and skips the warm-up,
    which the run as a whole has long finished.
    """
    import torch

    torch.set_num_threads(1)
    seed = actor_seed(spec, index, restart)
    env = make_env(spec.env)
    try:
        base = make_base(spec.base, env, seed=seed, **spec.base_kwargs)  # a scripted expert needs the sim itself
        env = with_reward(env, spec.reward)
        features = image_encoder(spec)
        if features:
            features.check_shapes({k: s.shape for k, s in env.observation_space.spaces.items()}, f"env {env.name}")
    except BaseException:
        env.close()
        raise
    done_steps, last_seed = resume_point(spec)
    name = actor_name(spec, index)
    budget = spec.actor.max_env_steps
    if budget == 0 and spec.learner.max_env_steps > 0:  # what is left of the learner's budget, shared out
        budget = max(1, -(-(spec.learner.max_env_steps - done_steps) // spec.runtime.num_actors))
    offset = max(0, last_seed[name] + 1 - seed) if name in last_seed else 0  # never replay a logged start
    cfg = dataclasses.replace(spec.actor, actor_id=name, seed=seed, max_env_steps=budget, episode_offset=offset)
    rl = spec.rl if restart == 0 else dataclasses.replace(spec.rl, warmup_env_steps=0)
    return ActorParts(env, base, rl, cfg, features)


@dataclass
class LearnerParts:
    env: EnvDescription
    base: BasePolicy | None  # relabels the demos (None: they keep their recorded action)
    rl: ResidualConfig
    cfg: LearnerConfig
    demos: str | None
    features: FrozenImageEncoder | None = None
    demo_keys: dict[str, str] | None = None  # the demos' key map

    def run(self, transport: LearnerTransport, stop: StopFlag | None = None,
            on_metrics: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        try:
            return run_learner(transport, self.rl, self.cfg, self.env.env_info, self.env.observation_space,
                               self.demos, self.base, stop, on_metrics, self.features, self.demo_keys)
        finally:
            transport.close()


def build_learner(spec: RunSpec) -> LearnerParts:
    """The run's learner: spaces from the env's description, the base only where demos need relabelling."""
    import torch

    torch.set_num_threads(spec.runtime.learner_threads)
    env = describe_env(spec.env)
    base = None
    if spec.demos and not base_entry(spec.base).needs_env:
        base = make_base(spec.base, env, seed=spec.seed, **spec.base_kwargs)
    return LearnerParts(env, base, spec.rl, dataclasses.replace(spec.learner, seed=spec.seed), spec.demos,
                        image_encoder(spec), spec.demo_keys)


def check_base(spec: RunSpec) -> None:
    """Build the base once before any process starts, so a bad base spec fails here."""
    if base_entry(spec.base).needs_env:
        env = make_env(spec.env)
        try:
            make_base(spec.base, env, seed=spec.seed, **spec.base_kwargs)
        finally:
            env.close()
    else:
        make_base(spec.base, describe_env(spec.env), seed=spec.seed, **spec.base_kwargs)


def launch(spec: RunSpec, progress: str | bool = "auto") -> dict[str, Any]:
    """Run `spec` to the end on the runtime it names (local processes or Ray); returns the learner's summary."""
    name = spec.runtime.name
    if name == "local":
        from robotlearn.runtime.local import run_local

        return run_local(spec)
    if name == "ray":
        from robotlearn.runtime.ray_runtime import run_ray

        return run_ray(spec, progress=progress)
    raise RunError(f"runtime={name} runs as separate nodes: start `robotlearn-learner-node --params <spec.yaml>` "
                   f"and `robotlearn-actor-node --params <spec.yaml>` (or `ros2 launch robotlearn ...`)")


def _sleep_unless(stop: StopFlag | None, seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end and not _should_stop(stop):
        time.sleep(0.05)
