"""The learner loop: ingest episodes, log them to zarr, update at UTD, publish versioned weights.

Transport-agnostic (local processes, ROS 2, Ray call `run_learner`). The zarr
online log is the replay buffer's source of truth: a restarted learner loads its
safetensors/YAML checkpoint and rebuilds the in-memory buffer from that log.
`Learner` exposes the steps (`ingest`, `train`, `publish`, `checkpoint`) so a
benchmark can also drive it in lock-step with an actor without a second copy.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from robotlearn.atomic_dir import atomic_dir, recover_dir
from robotlearn.envs.interface import STATE_KEY, EnvInfo, image_shapes
from robotlearn.policies.base import BasePolicy
from robotlearn.config import check_ranges
from robotlearn.progress import progress_bar, progress_mode
from robotlearn.rl.bases import relabel_base_actions
from robotlearn.rl.features import FEATURES_KEY, FrozenImageEncoder, rl_state
from robotlearn.rl.residual import ResidualConfig, ResidualLearner, state_statistics
from robotlearn.runtime.actor import StopFlag, _should_stop
from robotlearn.runtime.messages import EPISODE_ARRAYS, Episode, MessageError, encode_weights
from robotlearn.runtime.transport import LearnerTransport

log = logging.getLogger(__name__)


@dataclass
class LearnerConfig:
    out_dir: str = "runs/finetune"  # holds checkpoint/, online.zarr (the replay log) and tb/
    publish_every: int = 50  # critic updates between weight publications (HIL-SERL: 50)
    checkpoint_every: int = 2000  # critic updates between checkpoints (also one at exit)
    max_env_steps: int = 0  # stop once this many online env steps arrived and were trained on (0 = never)
    max_updates: int = 0  # stop after this many critic updates (0 = never)
    min_online_steps: int = 256  # online transitions needed before the first update
    # Demo buffer from the episodes marked successful only. Off (default): every episode, failures are
    # data too. On: a collection's failed episodes (e.g. noisy scripted demos) stay out of the demo
    # half of every batch.
    demo_success_only: bool = False
    # Steps a human took over (is_intervention) also join the demo half of every batch (HIL-SERL), with the
    # base's action beside the human's, so the residual learns the human's correction; they stay in the
    # online half too. Off: interventions are online data only.
    interventions_to_demos: bool = True
    log_every: int = 100  # critic updates between TensorBoard scalars
    resume: bool = True  # load out_dir/checkpoint and rebuild the buffer from out_dir/online.zarr if present
    tensorboard: bool = True
    progress: str = "auto"  # bar over env steps: auto | bar | lines | off (robotlearn/progress.py)
    device: str = ""  # "" = cuda if available else cpu
    seed: int = 0

    def __post_init__(self) -> None:
        self.progress = progress_mode(self.progress)
        check_ranges(self, "learner", publish_every="[1, inf)", checkpoint_every="[1, inf)",
                     max_env_steps="[0, inf)", max_updates="[0, inf)", min_online_steps="[1, inf)", log_every="[1, inf)")


class Learner:
    """One learner: residual networks + demo/online buffers + zarr log + publishing."""

    def __init__(self, transport: LearnerTransport | None, rl: ResidualConfig, cfg: LearnerConfig,
                 env_info: EnvInfo, obs_space, demos: str | None = None, base: BasePolicy | None = None,
                 features: FrozenImageEncoder | None = None, demo_keys: dict[str, str] | None = None) -> None:
        """`demo_keys` reads the demos' arrays under robotlearn names (robotlearn/data/keys.py).
        `base` relabels the demos' base actions; None keeps their recorded action (a base that needs
        the live env, such as a scripted sim expert, cannot be replayed over stored demos). `features`
        (rl.encoder=base): episodes carry the actor's image features and the networks read [state, features];
        demos get theirs from this encoder over their frames."""
        from robotlearn.data import EpisodeDataset, EpisodeWriter, MixedSampler, PooledSampler, TransitionBuffer

        self.transport, self.rl, self.cfg = transport, rl, cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(cfg.seed)
        self.features = features
        # rl.encoder=drq: the learner trains a camera encoder, so the buffers keep every camera's frames
        self.cameras = image_shapes(obs_space) if rl.encoder == "drq" else {}
        if rl.encoder == "drq" and not self.cameras:
            raise ValueError(f"rl.encoder=drq: env {env_info.name} has no cameras (images/<cam>); use rl.encoder=none")
        if features:
            features.check_shapes({k: sp.shape for k, sp in obs_space.spaces.items()}, f"env {env_info.name}")
        state_dim = int(obs_space[STATE_KEY].shape[0]) + (features.dim if features else 0)
        action_dim = int(len(env_info.action_spec.names))
        ckpt = recover_dir(self.out / "checkpoint")  # finish a swap a crash interrupted
        resumed = cfg.resume and (ckpt / "learner.yaml").exists()
        if resumed:
            self.learner = ResidualLearner.load(ckpt, cfg.device or None)
            fixed = ("num_critics", "hidden_dim", "num_layers", "residual_scale", "base_only_dims", "state_norm",
                     "encoder")
            changed = {k: (getattr(self.learner.cfg, k), getattr(rl, k)) for k in fixed
                       if getattr(self.learner.cfg, k) != getattr(rl, k)}
            if changed or (self.learner.state_dim, self.learner.action_dim) != (state_dim, action_dim):
                raise ValueError(f"cannot resume {ckpt}: it was trained with {changed or 'other'} network settings "
                                 f"(state/action dims {self.learner.state_dim}/{self.learner.action_dim}, env has "
                                 f"{state_dim}/{action_dim}); use a new out_dir or the original settings")
            self.learner.cfg = rl  # runtime knobs (lr, utd, noise) may change on resume
            log.info("resumed learner from %s at update %d", ckpt, self.learner.num_updates)
        else:
            self.learner = ResidualLearner(state_dim, action_dim, rl, cfg.device or None, self.cameras or None)
        self.learn_start = -1
        if resumed and not (ckpt / "runtime.yaml").exists():  # atomic_dir writes all files or none
            raise ValueError(f"cannot resume {ckpt}: it has no runtime.yaml (not written by this learner, or "
                             f"damaged); use a new out_dir or restore the checkpoint")
        if resumed:
            runtime = yaml.safe_load((ckpt / "runtime.yaml").read_text())
            self.learn_start = runtime["learn_start"]
            if "sampler_rng" in runtime:  # batches after a resume continue the uninterrupted sequence
                self.rng.bit_generator.state = runtime["sampler_rng"]
            _load_torch_rng(ckpt / "rng.safetensors")

        # demo buffer (frozen, relabelled with the base's actions) and online buffer; the RL sees state only
        keys = ["state", "action", "base_action", *self.cameras]
        self.demo_buffer: TransitionBuffer | None = None
        if demos:
            self.demo_buffer = self._load_demos(EpisodeDataset(demos, key_map=demo_keys), base, keys)
        self.online_buffer = TransitionBuffer(keys, n_step=rl.n_step, gamma=rl.gamma, capacity=rl.buffer_size)
        self.intervention_buffer = TransitionBuffer(keys, n_step=rl.n_step, gamma=rl.gamma,
                                                    capacity=rl.buffer_size) if cfg.interventions_to_demos else None
        self.demo_half = PooledSampler([b for b in (self.demo_buffer, self.intervention_buffer) if b is not None])
        self.mixed = MixedSampler([(self.demo_half, rl.demo_ratio), (self.online_buffer, 1 - rl.demo_ratio)]) \
            if self.demo_half.buffers and rl.demo_ratio > 0 else None

        self.recent_interventions: deque[float] = deque(maxlen=20)  # fraction of steps a human took over
        # the online zarr log: reopened on resume (a crash's partial tail is trimmed by the writer)
        log_path = self.out / "online.zarr"
        self.episodes: list[dict[str, Any]] = []  # (env_steps, success, return, version) per episode, for curves
        if cfg.resume and log_path.exists():
            ds = EpisodeDataset(log_path)
            # one read of the whole log (features, not frames, with rl.encoder=base), then sliced per episode
            data = ds.load(list(EPISODE_ARRAYS) + ([FEATURES_KEY] if features else []) + list(self.cameras))
            term, succ, ver = (ds.meta_array(k) for k in ("terminated", "success", "policy_version"))
            start = 0
            for i, end in enumerate(ds.episode_ends):
                ep = {k: v[start:end] for k, v in data.items()}
                self._add_online(ep, bool(term[i]))
                self._record(int(end - start), bool(succ[i]), float(ep["reward"].sum()), int(ver[i]))
                start = int(end)
            # actors may have seen versions newer than the checkpoint: continue above all of them
            seen = max([e["version"] for e in self.episodes] + [self.learner.version])
            self.learner.version = seen + 1 if self.episodes else self.learner.version
        elif log_path.exists():
            raise FileExistsError(f"{log_path} exists and resume=false; pick a new out_dir or resume")
        extras = {"base_action": ((action_dim,), EPISODE_ARRAYS["base_action"][0])}
        if features:
            extras[FEATURES_KEY] = ((features.dim,), np.float32)
        self.writer = EpisodeWriter(log_path, env_info=env_info, obs_space=obs_space, action_dim=action_dim,
                                    extras=extras)
        self.episode_log = EpisodeLogThread(self.writer)
        self.learner.env_steps = sum(e["length"] for e in self.episodes)
        if self.episodes or resumed:
            print(f"resumed {self.out}: {self.learner.num_updates} updates, {self.learner.env_steps} env steps, "
                  f"{len(self.episodes)} episodes", flush=True)
        self.recent: deque[float] = deque(maxlen=20)
        self.metrics: dict[str, float] = {}
        self.rejected = 0
        self.run_id = uuid.uuid4().hex[:12]  # this learner process: actors order weights by (run_id, version)

    def _load_demos(self, ds, base: BasePolicy | None, keys: list[str]):
        """Demo episodes (all, or the successful ones) into a frozen buffer, `base_action` = the base's action."""
        from robotlearn.data import TransitionBuffer

        if ds.n_episodes == 0:
            raise ValueError(f"demo dataset {ds.path} has no committed episodes")
        missing = [k for k in ("state", "action", "reward", *self.cameras) if k not in ds.keys]
        if missing:
            raise ValueError(f"demo dataset {ds.path} lacks data/{', data/'.join(missing)} (it has {ds.keys}); "
                             f"demos need state, action and reward per step (and the cameras, with rl.encoder=drq)")
        if base is None:
            log.warning("no replayable base for the demos: their base_action is the recorded demo action")
        buf = TransitionBuffer(keys, n_step=self.rl.n_step, gamma=self.rl.gamma, capacity=max(ds.n_steps, 1))
        read = [k for k in ds.keys if k in ("state", "action", "reward") or k.startswith("images/")]
        if self.features:
            self.features.check_shapes({k: ds.array(k).shape[1:] for k in read}, f"demo dataset {ds.path}")
        terminated = ds.meta_array("terminated")
        episodes = range(ds.n_episodes)
        if self.cfg.demo_success_only:
            episodes = np.flatnonzero(ds.meta_array("success"))
            if len(episodes) == 0:
                raise ValueError(f"demo dataset {ds.path}: demo_success_only is set but none of its "
                                 f"{ds.n_episodes} episodes is marked successful")
            log.info("demos: %d of %d episodes are successful; using only those", len(episodes), ds.n_episodes)
        for i in episodes:
            ep = ds.get_episode(i, keys=read)
            ep["base_action"] = ep["action"].astype(np.float32) if base is None else relabel_base_actions(ep, base)
            if self.features:
                ep[FEATURES_KEY] = self.features.batch(ep)
            buf.add_episode(self._for_buffer(ep), terminated=bool(terminated[i]))
        if self.learner.num_updates == 0:  # fix the state normaliser from demo statistics
            states = buf._store["state"][: buf.n_added_steps]
            self.learner.set_state_normalizer(*state_statistics(states, self.rl.state_norm))
        return buf

    @property
    def sampler(self):
        """Demos and interventions for the demo half of each batch once there are any; online data otherwise."""
        return self.mixed if self.mixed is not None and len(self.demo_half) else self.online_buffer

    def _add_online(self, arrays: dict[str, np.ndarray], terminated: bool) -> None:
        """An online episode into the online buffer, and each stretch a human took over into the demo half.

        A stretch [a, b) goes in with the step after it (its bootstrap state), so each of its steps is a
        transition; n-step returns are cut at the stretch's end.
        """
        ep = self._for_buffer(arrays)
        self.online_buffer.add_episode(ep, terminated=terminated)
        flags = np.asarray(arrays["is_intervention"], bool)
        self.recent_interventions.append(float(flags.mean()))
        if self.intervention_buffer is None or not flags.any():
            return
        T = len(flags)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))  # starts, ends
        for a, b in zip(edges[::2], edges[1::2]):
            end = min(b + 1, T)
            self.intervention_buffer.add_episode({k: v[a:end] for k, v in ep.items()},
                                                 terminated=terminated and end == T)

    def _for_buffer(self, ep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An episode's arrays as the networks read them: state = [state, features] with rl.encoder=base."""
        return {"state": rl_state(ep["state"], ep[FEATURES_KEY] if self.features else None),
                "action": ep["action"], "base_action": ep["base_action"], "reward": ep["reward"],
                **{k: ep[k] for k in self.cameras}}  # rl.encoder=drq: the frames, encoded by the learner

    def _record(self, length: int, success: bool, ret: float, version: int) -> None:
        steps = (self.episodes[-1]["env_steps"] if self.episodes else 0) + length
        self.episodes.append({"env_steps": steps, "length": length, "success": success, "return": ret, "version": version})

    # -- steps of the loop -----------------------------------------------------------
    def ingest(self, payloads: list[bytes]) -> int:
        """Decode episodes, commit each to the zarr log, then add it to the online buffer."""
        n = 0
        for p in payloads:
            try:
                ep = Episode.decode(p)
                if (FEATURES_KEY in ep.arrays) != bool(self.features):
                    raise MessageError(f"episode from {ep.actor_id or '?'} {'lacks' if self.features else 'has'} "
                                       f"image features, and this learner runs rl.encoder="
                                       f"{'base' if self.features else 'none'}")
                self.writer.check_episode(ep.arrays)  # schema errors drop the message here, not in the log thread
            except Exception as e:  # noqa: BLE001 - any bad message is dropped and counted; the loop goes on
                self.rejected += 1
                log.error("dropped a bad episode message: %s", e)
                continue
            self.episode_log.put(ep.arrays, success=ep.success, source="policy", policy_version=ep.policy_version,
                                 terminated=ep.terminated, reward_source=ep.reward_source,
                                 actor_id=ep.actor_id or "?", seed=ep.seed)
            self._add_online(ep.arrays, ep.terminated)
            self.learner.env_steps += len(ep)
            self._record(len(ep), ep.success, float(ep.arrays["reward"].sum()), ep.policy_version)
            self.recent.append(float(ep.success))
            n += len(ep)
        return n

    def updates_owed(self) -> int:
        """Critic updates allowed now: a critic-only warm-up block, then UTD x new env steps."""
        if len(self.online_buffer) < self.cfg.min_online_steps:
            return 0
        if self.learn_start < 0:
            self.learn_start = self.learner.env_steps
        allowed = self.rl.critic_warmup_updates + self.rl.utd * (self.learner.env_steps - self.learn_start)
        return max(0, allowed - self.learner.num_updates)

    def train(self, max_updates: int) -> int:
        """Up to `max_updates` (and no more than owed) updates; publishes every `publish_every`."""
        n = min(max_updates, self.updates_owed())
        for _ in range(n):
            batch = self.sampler.sample(self.rl.batch_size, self.rng)
            self.metrics = self.learner.update(_to_learner_batch(batch))
            if self.learner.num_updates % self.cfg.publish_every == 0:
                self.publish()
        return n

    def publish(self) -> None:
        if self.transport is None:
            return
        self.learner.version += 1
        v = self.learner.version
        backlog = -(-self.updates_owed() // self.rl.utd)  # env steps not yet trained on (actor.max_lead_steps)
        self.transport.publish_weights(encode_weights(v, self.learner.actor_weights(), run=self.run_id,
                                                      num_updates=self.learner.num_updates, backlog_steps=backlog))

    def checkpoint(self) -> None:
        self.episode_log.flush()  # the checkpoint never runs ahead of the zarr log it resumes from
        with atomic_dir(self.out / "checkpoint") as d:  # the files are swapped in together
            self.learner.write(d)
            _save_torch_rng(d / "rng.safetensors")
            runtime = {"learn_start": int(self.learn_start), "sampler_rng": self.rng.bit_generator.state}
            (d / "runtime.yaml").write_text(yaml.safe_dump(runtime))

    def close(self) -> None:
        try:
            self.episode_log.close()
        finally:
            self.writer.close()


class EpisodeLogThread:
    """Commits online episodes to the zarr log on a background thread.

    zarr-python spends ~80 ms of Python per committed episode (a dozen array resizes
    and writes); on the update loop that is time the learner does not train. The
    torch update releases the GIL, so the writes overlap it. Episodes are validated
    before they are queued; a crash loses at most the queued ones and the log stays
    consistent (commit marker last). A write error stops logging and is raised on the
    next put/flush: the learner must not keep training on data it can no longer log.
    """

    def __init__(self, writer, max_queued: int = 256) -> None:
        self.writer = writer
        self.q: queue.Queue = queue.Queue(max_queued)  # full -> put() blocks: back-pressure, no silent drops
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="zarr-episode-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    arrays, meta = item
                    self.writer.add_episode(arrays, **meta)
            except BaseException as e:  # noqa: BLE001 - handed to the learner thread
                self.error = e
            finally:
                self.q.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"writing the online log {self.writer.path} failed: {self.error}") from self.error

    def put(self, arrays: dict[str, np.ndarray], **meta) -> None:
        self._raise()
        self.q.put((arrays, meta))

    def flush(self) -> None:
        """Block until every queued episode is committed."""
        self.q.join()
        self._raise()

    def close(self) -> None:
        if self.thread.is_alive():
            self.q.put(None)
            self.thread.join()
        self._raise()


def _save_torch_rng(path: Path) -> None:
    """torch CPU (+ CUDA) generator states as uint8 tensors: target noise and critic pairs resume exactly."""
    import torch
    from safetensors.torch import save_file

    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(states, str(path))


def _load_torch_rng(path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    if not path.exists():  # checkpoints from before RNG state was saved
        return
    states = load_file(str(path))
    torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _to_learner_batch(b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TransitionBuffer sample keys -> ResidualLearner batch keys (see residual.py docstring)."""
    out = {"state": b["state"], "base_action": b["base_action"], "action": b["action"], "reward": b["reward"],
           "discount": b["discount"], "next_state": b["next/state"], "next_base_action": b["next/base_action"]}
    out.update({k: v for k, v in b.items() if "images/" in k})  # rl.encoder=drq: frames and next/ frames
    return out


def run_learner(transport: LearnerTransport, rl: ResidualConfig, cfg: LearnerConfig, env_info: EnvInfo, obs_space,
                demos: str | None = None, base: BasePolicy | None = None, stop: StopFlag | None = None,
                on_metrics: Callable[[dict[str, Any]], None] | None = None,
                features: FrozenImageEncoder | None = None, demo_keys: dict[str, str] | None = None) -> dict[str, Any]:
    """Run until stop / max_env_steps / max_updates. Returns summary stats and the per-episode history.

    `base` relabels the demos; `features` is the frozen image encoder with rl.encoder=base;
    `on_metrics` gets the logged scalars each `log_every` updates (benchmarks, UIs).
    """
    L = Learner(transport, rl, cfg, env_info, obs_space, demos, base, features, demo_keys)
    tb = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        tb = SummaryWriter(str(L.out / "tb"))
    bar = progress_bar(total=cfg.max_env_steps or None, initial=L.learner.env_steps, unit="step", desc="finetune",
                       mode=cfg.progress)
    L.publish()  # actors get the current (resumed or zero-init) weights + normaliser immediately
    t0, updates0, steps0 = time.time(), L.learner.num_updates, L.learner.env_steps
    t_learn, updates_learn, steps_learn = None, updates0, steps0  # steady state: from the first update on
    last_log = last_ckpt = L.learner.num_updates
    try:
        while not _should_stop(stop):
            got = L.ingest(transport.recv_episodes(timeout=0.0 if L.updates_owed() else 0.05))
            if got:
                bar.update(got)
            if L.train(max_updates=8) and t_learn is None:  # small slices so new episodes are logged promptly
                t_learn, updates_learn, steps_learn = time.time(), L.learner.num_updates, L.learner.env_steps
            u = L.learner.num_updates
            if u - last_ckpt >= cfg.checkpoint_every:
                L.checkpoint()
                last_ckpt = u
            if u - last_log >= cfg.log_every or (got and not L.updates_owed() and u == last_log):
                scalars = _scalars(L, transport, t0, updates0, steps0)
                if tb is not None:
                    for k, v in scalars.items():
                        tb.add_scalar(k, v, L.learner.env_steps)
                bar.set_postfix(success=f"{scalars['train/success_rate']:.2f}", v=L.learner.version,
                                    iv=f"{scalars['train/intervention_rate']:.2f}",
                                    ups=f"{scalars['rate/learner_updates_per_s']:.0f}")
                if on_metrics is not None:
                    on_metrics(scalars)
                last_log = u
            done_steps = cfg.max_env_steps and L.learner.env_steps >= cfg.max_env_steps and not L.updates_owed()
            if done_steps or (cfg.max_updates and u >= cfg.max_updates):
                break
    finally:
        L.checkpoint()
        L.close()
        bar.close()
        if tb is not None:
            tb.close()
    elapsed = time.time() - (t_learn or t0)  # rates exclude start-up and waiting for the first data
    return {"env_steps": L.learner.env_steps, "updates": L.learner.num_updates, "version": L.learner.version,
            "episodes": L.episodes, "rejected": L.rejected, "wall_s": time.time() - t0,
            "learner_updates_per_s": (L.learner.num_updates - updates_learn) / max(elapsed, 1e-9),
            "env_steps_per_s": (L.learner.env_steps - steps_learn) / max(elapsed, 1e-9),
            "heartbeats": transport.heartbeats(), "out_dir": str(L.out)}


def measure_update_rate(rl: ResidualConfig, state_dim: int, action_dim: int, device: str | None = None,
                        n: int = 20, image_shapes: dict[str, tuple[int, ...]] | None = None) -> float:
    """Learner updates/s for this recipe on this machine (synthetic batch), to pace sim actors. `state_dim`: what
    the networks read besides drq features ([state, frozen features] with rl.encoder=base); `image_shapes`: the
    env's cameras, whose frames a rl.encoder=drq update encodes (ignored otherwise)."""
    learner = ResidualLearner(state_dim, action_dim, rl, device, image_shapes=image_shapes)
    rng = np.random.default_rng(0)
    b = {k: rng.normal(size=(rl.batch_size, state_dim)).astype(np.float32) for k in ("state", "next_state")}
    if learner.encoder is not None:  # rl.encoder=drq: the update encodes every camera's frames
        for k, shape in learner.encoder.image_shapes.items():
            b[k] = b[f"next/{k}"] = rng.integers(0, 256, (rl.batch_size, *shape), dtype=np.uint8)
        n = min(n, 3)  # a drq update on a CPU takes seconds
    b.update({k: rng.uniform(-1, 1, (rl.batch_size, action_dim)).astype(np.float32)
              for k in ("action", "base_action", "next_base_action")})
    b["reward"], b["discount"] = np.zeros(rl.batch_size, np.float32), np.ones(rl.batch_size, np.float32)
    learner.update(b)
    t = time.perf_counter()
    for _ in range(n):
        learner.update(b)
    return n / (time.perf_counter() - t)


def _scalars(L: Learner, transport: LearnerTransport, t0: float, updates0: int, steps0: int) -> dict[str, float]:
    elapsed = max(time.time() - t0, 1e-9)
    beats = transport.heartbeats()
    s = {f"learner/{k}": v for k, v in L.metrics.items()}
    s.update({
        "train/success_rate": float(np.mean(L.recent)) if L.recent else 0.0,
        "train/intervention_rate": float(np.mean(L.recent_interventions)) if L.recent_interventions else 0.0,
        "train/return": float(np.mean([e["return"] for e in L.episodes[-20:]])) if L.episodes else 0.0,
        "rate/learner_updates_per_s": (L.learner.num_updates - updates0) / elapsed,
        "rate/env_steps_per_s": (L.learner.env_steps - steps0) / elapsed,
        "rate/actor_steps_per_s": float(sum(st.get("steps_per_s", 0.0) for _, st in beats.values())),
        "learner/version": float(L.learner.version),
        "learner/utd_effective": (L.learner.num_updates - updates0) / max(L.learner.env_steps - steps0, 1),
    })
    return s
