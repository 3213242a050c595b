"""`robotlearn collect env=sim/lift episodes=50 noise=0.2 seed=0 out=data/lift.zarr [policy=<ckpt> | teleop=true]`.

Runs the env's scripted expert (or a policy checkpoint, or nothing: `teleop=true`
records a human driving the robot through the env's intervention input) and records
every step into a zarr dataset, with the action the env executed (a human's, where
one took over). Each finished episode is committed on its own, so Ctrl-C or
a crash loses at most the episode in progress, and re-running the same command
appends until `episodes` committed episodes exist.

Episode i resets with seed + i and the expert's noise (or a sampling policy) is seeded
from that reset seed too, so an episode depends on nothing else: `num_envs=N` (N env
worker processes, runtime/episode_workers.py) and a resumed run write exactly the
episodes, in the same order, that one uninterrupted process writes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.config import check_ranges
from robotlearn.data import EpisodeDataset, EpisodeWriter
from robotlearn.data.layout import DatasetError
from robotlearn.envs import make_env
from robotlearn.envs.interface import INFO_INTERVENTION, INFO_INTERVENTION_ACTION, INFO_SUCCESS, STATE_KEY, RobotEnv
from robotlearn.policies.base import BasePolicy, ChunkStepper, ZeroPolicy
from robotlearn.progress import progress_bar, progress_mode
from robotlearn.rewards.sources import check_reward, with_reward
from robotlearn.runtime.episode_workers import EpisodeWorkers, WorkerError, check_num_envs
from robotlearn.runtime.messages import Episode


@dataclass
class CollectConfig:
    env: Optional[dict[str, Any]] = None
    episodes: int = 50
    noise: float = 0.2
    seed: int = 0
    out: str = "data/lift.zarr"
    checkpoint: Optional[str] = None
    # Pure teleop recording: no policy acts (a zero action: the robot holds still) and every step records
    # what the human's intervention made the robot do. Needs an env with an intervention input (ROS 2).
    teleop: bool = False
    # teleop=true: each episode starts once the human's input is live; no input for this long is an error.
    teleop_wait_s: float = 30.0
    source: Optional[str] = None
    only_success: bool = False
    max_attempts: Optional[int] = None
    flush_every: int = 16
    device: str = "auto"
    # Reward recorded per step: env (its own detector) | classifier:<dir> (a train-reward checkpoint) | label
    # (a human's label on a ROS 2 robot's label topic); the episode meta records which (reward_source).
    reward: str = "env"
    progress: str = "auto"  # auto | bar | lines | off (robotlearn/progress.py); true = auto, false = off
    # Env worker processes running episodes side by side (1: in this process). The dataset is the same for any
    # N: episodes are written in seed order, each depending only on its seed. Not for a robot (a ROS 2 env).
    num_envs: int = 1

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)
        check_reward(self.reward)
        check_ranges(self, "", teleop_wait_s="(0, inf)", num_envs="[1, inf)")


def make_actor(cfg: CollectConfig, env: RobotEnv, seed: int) -> tuple[BasePolicy, str]:
    if cfg.teleop and cfg.checkpoint:
        raise ConfigError("collect: teleop=true records a human only; drop policy=<checkpoint> (or teleop)")
    if cfg.teleop:
        if not env.accepts_interventions:
            raise ConfigError(f"collect teleop=true: env {env.name!r} has no teleop input (a ROS 2 robot with "
                              f"robot.intervention set has one); nothing would drive it")
        return ZeroPolicy(int(env.action_space.shape[0])), "human"
    if cfg.checkpoint:
        from robotlearn.policies.checkpoint import load_policy

        return load_policy(cfg.checkpoint, env=env, device=None if cfg.device == "auto" else cfg.device), "policy"
    if not hasattr(env, "make_expert"):
        raise ConfigError(f"env {env.name!r} has no scripted expert (make_expert); pass policy=<checkpoint>, "
                          f"or teleop=true to record a human")
    return env.make_expert(noise=cfg.noise, seed=seed), "scripted"


def next_seed(path: Path, default: int) -> int:
    """Continue after the highest reset seed already recorded, so a resumed run never repeats episodes."""
    if not path.exists():
        return default
    ds = EpisodeDataset(path)
    if ds.n_episodes == 0 or "seed" not in ds.meta_keys:
        return default + ds.n_episodes
    return max(default, int(ds.meta_array("seed").max()) + 1)


def wait_for_human(env: RobotEnv, timeout_s: float, bar) -> None:
    """teleop=true records only the human: start an episode once their input is live, not before."""
    if env.wait_for_intervention(0.0):
        return
    bar.write(f"collect teleop=true: waiting up to {timeout_s:.0f} s for the teleop input of {env.name!r} ...")
    if not env.wait_for_intervention(timeout_s):
        raise ConfigError(f"collect teleop=true: no teleop input from {env.name!r} within {timeout_s:.0f} s "
                          f"(is the teleop device publishing? teleop_wait_s=<s> waits longer)")


def run_episode(env: RobotEnv, stepper: ChunkStepper, writer: "EpisodeWriter | StepBuffer", seed: int
                ) -> tuple[bool, bool]:
    """One episode into the writer (not yet committed); returns (success, terminated). The actor is seeded
    from the reset seed too (a noisy expert's noise), so the episode depends on `seed` alone."""
    obs, info = env.reset(seed=seed)
    stepper.reset(seed=seed)
    success, done, terminated = bool(info.get("success")), False, False
    while not done:
        action = np.clip(stepper.next_action(obs), -1.0, 1.0)
        next_obs, reward, terminated, truncated, info = env.step(action)
        executed = info.get(INFO_INTERVENTION_ACTION, action)  # record what the env executed: a human's, if any
        writer.add_step(obs, executed, reward, is_intervention=bool(info.get(INFO_INTERVENTION, False)))
        success = success or bool(info.get(INFO_SUCCESS))
        obs, done = next_obs, terminated or truncated
    return success, terminated


def seeds_to_try(cfg: CollectConfig, first: int, have: int) -> "range | count":
    """The reset seeds this run may use, from `first`: one per missing episode, as every attempt commits, unless
    only_success discards failures (then up to max_attempts of them, by default 5 x episodes)."""
    max_attempts = cfg.max_attempts or (5 * cfg.episodes if cfg.only_success else None)
    limits = [n for n in (max_attempts, None if cfg.only_success else cfg.episodes - have) if n is not None]
    return range(first, first + max(0, min(limits))) if limits else count(first)


class StepBuffer:
    """One episode's steps in memory, taken as `EpisodeWriter.add_step` takes them (a collect worker's episode)."""

    def __init__(self) -> None:
        self.obs: list[dict] = []
        self.action: list[np.ndarray] = []
        self.reward: list[float] = []
        self.is_intervention: list[bool] = []

    def add_step(self, obs: dict, action, reward, is_intervention: bool = False) -> None:
        self.obs.append(obs)
        self.action.append(np.asarray(action, np.float32))
        self.reward.append(reward)
        self.is_intervention.append(bool(is_intervention))

    def episode(self, success: bool, terminated: bool, seed: int, reward_source: str) -> Episode:
        """The steps as an `Episode` message (base_action: the executed action; collect records no other)."""
        arrays = {k: np.stack([np.asarray(o[k], np.float32 if k == STATE_KEY else None) for o in self.obs])
                  for k in self.obs[0]}
        action = np.stack(self.action)
        arrays.update(action=action, base_action=action, reward=np.asarray(self.reward, np.float32),
                      is_intervention=np.asarray(self.is_intervention, np.bool_))
        return Episode(arrays, success=success, terminated=terminated, policy_version=-1, seed=seed,
                       reward_source=reward_source)


class EpisodeJob:
    """A collect env worker (num_envs > 1): the env and actor of a CollectConfig (as a dict); a call runs the
    episode of one reset seed and returns it as an encoded `Episode`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = CollectConfig(**config)
        self.env = make_env(dict(self.cfg.env))
        try:
            self.env = with_reward(self.env, self.cfg.reward)
            self.stepper = ChunkStepper(make_actor(self.cfg, self.env, self.cfg.seed)[0])
        except BaseException:
            self.env.close()
            raise

    def __call__(self, seed: int) -> bytes:
        steps = StepBuffer()
        success, terminated = run_episode(self.env, self.stepper, steps, seed)
        return steps.episode(success, terminated, seed, self.env.reward_source).encode()

    def close(self) -> None:
        self.env.close()


Recorded = tuple[int, Optional[Episode], bool, bool]  # (seed, the episode if not already in the writer, success, terminated)


def local_episodes(cfg: CollectConfig, env: RobotEnv, stepper: ChunkStepper, writer: EpisodeWriter,
                   seeds: Iterable[int], bar) -> Iterator[Recorded]:
    """num_envs=1: each episode streams straight into the writer (uncommitted until the caller decides)."""
    for seed in seeds:
        if cfg.teleop:
            wait_for_human(env, cfg.teleop_wait_s, bar)
        yield (seed, None, *run_episode(env, stepper, writer, seed))


def worker_episodes(workers: EpisodeWorkers, seeds: Iterable[int]) -> Iterator[Recorded]:
    """num_envs > 1: the workers' episodes, in seed order."""
    for seed, payload in workers.ordered(seeds):
        ep = Episode.decode(payload)
        yield seed, ep, ep.success, ep.terminated


def collect(cfg: CollectConfig) -> dict[str, Any]:
    if not cfg.env:
        raise ConfigError("collect needs env=<name>, e.g. env=sim/lift")
    check_num_envs(cfg.env, cfg.num_envs, "collect")
    if cfg.teleop and cfg.num_envs > 1:
        raise ConfigError(f"collect teleop=true records one human on one robot; drop num_envs={cfg.num_envs}")
    env = make_env(dict(cfg.env))
    try:
        env = with_reward(env, cfg.reward)
    except BaseException:
        env.close()
        raise
    out = Path(cfg.out)
    seed = next_seed(out, cfg.seed)
    try:
        actor, default_source = make_actor(cfg, env, seed)
    except BaseException:
        env.close()
        raise
    source = cfg.source or default_source
    stepper = ChunkStepper(actor)
    writer = EpisodeWriter(out, env_info=env.env_info, obs_space=env.observation_space, flush_every=cfg.flush_every)
    start = writer.n_episodes
    if writer.recovered:
        print(f"{out}: dropped an interrupted episode ({writer.recovered['partial_steps']} steps) from a previous run")
    seeds = seeds_to_try(cfg, seed, start)
    attempts = successes = 0
    bar = progress_bar(total=cfg.episodes, initial=min(start, cfg.episodes), desc=f"collect {env.name}", unit="ep",
                       mode=cfg.progress)
    workers = None
    try:
        if start >= cfg.episodes:
            episodes: Iterator[Recorded] = iter(())
        elif cfg.num_envs > 1:
            n = min(cfg.num_envs, len(seeds)) if isinstance(seeds, range) else cfg.num_envs
            workers = EpisodeWorkers("collect", asdict(cfg), n, f"collect {env.name}")
            episodes = worker_episodes(workers, seeds)
        else:
            episodes = local_episodes(cfg, env, stepper, writer, seeds, bar)
        for s, ep, success, terminated in episodes:
            attempts += 1
            successes += success
            if cfg.only_success and not success:
                if ep is None:
                    writer.discard_episode()
            else:
                meta = dict(success=success, source=source, terminated=terminated, seed=s,
                            reward_source=env.reward_source)
                if ep is None:
                    writer.end_episode(**meta)
                else:  # a worker's episode, written whole (its base_action copy is not a dataset key)
                    writer.add_episode({k: v for k, v in ep.arrays.items() if k != "base_action"}, **meta)
                bar.update(1)
            bar.set_postfix(success=f"{successes / attempts:.0%}")
            if writer.n_episodes >= cfg.episodes:
                break
    finally:  # Ctrl-C: committed episodes stay, the one in progress is dropped
        if workers is not None:
            workers.close()
        bar.close()
        writer.close()
        env.close()
    ds = EpisodeDataset(out)
    total = float(ds.meta_array("success").mean()) if ds.n_episodes else 0.0
    return {"out": str(out), "episodes": ds.n_episodes, "new_episodes": ds.n_episodes - start, "attempts": attempts,
            "run_success_rate": successes / attempts if attempts else float("nan"), "dataset_success_rate": total}


def main(argv: list[str]) -> int:
    from robotlearn.policies.checkpoint import CheckpointError  # imports torch: not at import (env workers)

    argv = ["checkpoint=" + a.split("=", 1)[1] if a.startswith("policy=") else a for a in argv]
    try:
        cfg = load("collect", argv, CollectConfig)
        r = collect(cfg)
    except (ConfigError, DatasetError, FileNotFoundError, CheckpointError, WorkerError) as e:  # bugs keep tracebacks
        fail(str(e))
    if r["attempts"] == 0:
        print(f"{r['out']} already holds {r['episodes']} episodes (>= episodes={cfg.episodes}); nothing to do")
        return 0
    print(f"{r['out']}: +{r['new_episodes']} episodes ({r['attempts']} attempts), success rate this run "
          f"{r['run_success_rate']:.1%}; dataset: {r['episodes']} episodes, success rate {r['dataset_success_rate']:.1%}")
    if r["episodes"] < cfg.episodes:
        print(f"warning: only {r['episodes']}/{cfg.episodes} episodes after {r['attempts']} attempts (max_attempts)")
        return 1
    return 0
