"""Local transport and runner: actor and learner processes on one machine, bytes only.

Episodes travel actor -> learner over a one-way `multiprocessing` Pipe with
`send_bytes` (raw bytes, no pickle); a feeder thread on the actor side does the
sending so the control loop never blocks on a full pipe. Weights travel through
one shared-memory slot (latest wins): the learner writes payload + length +
version under a lock, actors read it only when the version changed. Processes
are started with the 'spawn' context (safe with torch and MuJoCo).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import queue
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from robotlearn.runtime.transport import ActorTransport, LearnerTransport, WeightsUpdate

_EPISODE, _HEARTBEAT = b"E", b"H"


class WeightsSlot:
    """A fixed-capacity shared-memory buffer holding the latest weights message."""

    def __init__(self, ctx, capacity: int) -> None:
        self.capacity = capacity
        self.buf = ctx.RawArray("B", capacity)
        self.length = ctx.RawValue("q", 0)
        self.version = ctx.RawValue("q", -1)
        self.lock = ctx.Lock()

    def write(self, update: WeightsUpdate) -> None:
        n = len(update.payload)
        if n > self.capacity:
            raise ValueError(f"weights message of {n} bytes exceeds the local weights slot ({self.capacity} bytes); "
                             f"raise weights_capacity")
        with self.lock:
            memoryview(self.buf).cast("B")[:n] = update.payload
            self.length.value = n
            self.version.value = update.version

    def read_if_newer(self, seen: int) -> WeightsUpdate | None:
        if self.version.value <= seen:  # lock-free check: the common case costs nothing
            return None
        with self.lock:
            n, v = self.length.value, self.version.value
            return WeightsUpdate(version=v, payload=bytes(memoryview(self.buf).cast("B")[:n]))


class LocalActorTransport(ActorTransport):
    def __init__(self, conn: Connection, slot: WeightsSlot, max_queued: int = 1000) -> None:
        self.conn, self.slot, self.max_queued = conn, slot, max_queued
        self._seen = -1
        self._q: queue.Queue | None = None
        self.dropped = 0

    def __getstate__(self) -> dict:  # the feeder thread is per process, started lazily
        return {"conn": self.conn, "slot": self.slot, "max_queued": self.max_queued}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def _send(self, payload: bytes) -> None:
        if self._q is None:
            self._q = queue.Queue(self.max_queued)
            threading.Thread(target=self._feed, daemon=True, name="local-transport-feeder").start()
        try:
            self._q.put_nowait(payload)
        except queue.Full:  # the learner is gone or far behind: never stall the control loop
            self.dropped += 1

    def _feed(self) -> None:
        while True:
            payload = self._q.get()
            if payload is None:
                return
            try:
                self.conn.send_bytes(payload)
            except (BrokenPipeError, OSError):
                self.dropped += 1

    def send_transitions(self, payload: bytes) -> None:
        self._send(_EPISODE + payload)

    def poll_weights(self) -> WeightsUpdate | None:
        update = self.slot.read_if_newer(self._seen)
        if update is not None:
            self._seen = update.version
        return update

    def heartbeat(self, actor_id: str, stats: dict) -> None:
        self._send(_HEARTBEAT + json.dumps({"actor_id": actor_id, "stats": stats}).encode())

    def close(self, timeout: float = 5.0) -> None:
        """Flush queued episodes (bounded wait) and close the pipe."""
        if self._q is not None:
            self._q.put(None)
            deadline = time.time() + timeout
            while not self._q.empty() and time.time() < deadline:
                time.sleep(0.01)
        self.conn.close()


class LocalLearnerTransport(LearnerTransport):
    def __init__(self, conns: list[Connection], slot: WeightsSlot) -> None:
        self.conns, self.slot = list(conns), slot
        self._beats: dict[str, tuple[float, dict]] = {}

    def recv_transitions(self, timeout: float = 0.0) -> list[bytes]:
        out: list[bytes] = []
        ready = wait(self.conns, timeout) if self.conns else []
        while ready:
            for c in ready:
                try:
                    msg = c.recv_bytes()
                except (EOFError, OSError):  # that actor exited: stop listening to it
                    self.conns.remove(c)
                    continue
                if msg[:1] == _EPISODE:
                    out.append(msg[1:])
                elif msg[:1] == _HEARTBEAT:
                    beat = json.loads(msg[1:])
                    self._beats[beat["actor_id"]] = (time.time(), beat["stats"])
            ready = wait(self.conns, 0) if self.conns else []
        return out

    def publish_weights(self, update: WeightsUpdate) -> None:
        self.slot.write(update)

    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        return dict(self._beats)


def make_local_transports(n_actors: int, ctx=None, weights_capacity: int = 64 << 20
                          ) -> tuple[LocalLearnerTransport, list[LocalActorTransport]]:
    """One learner transport + `n_actors` actor transports sharing one weights slot."""
    ctx = ctx or mp.get_context("spawn")
    slot = WeightsSlot(ctx, weights_capacity)
    pipes = [ctx.Pipe(duplex=False) for _ in range(n_actors)]  # (recv end, send end)
    return LocalLearnerTransport([r for r, _ in pipes], slot), [LocalActorTransport(s, slot) for _, s in pipes]


def weights_capacity_for(state_dim: int, action_dim: int, rl: Any) -> int:
    """Bytes the actor's weights message needs, with headroom (fp32 params + header)."""
    h, d = rl.hidden_dim, state_dim + action_dim
    params = d * h + h + 3 * h + (rl.num_layers - 1) * (h * h + 3 * h) + h * action_dim + action_dim + 2 * state_dim
    return int(params * 4 * 1.5) + (1 << 16)


# ---------------------------------------------------------------------------- runner
def _actor_entry(transport: LocalActorTransport, env_name: str, env_kwargs: dict, base_spec: str, rl, cfg, stop) -> None:
    import torch

    from robotlearn.envs import make_env
    from robotlearn.rl.bases import make_base
    from robotlearn.runtime.actor import run_actor

    torch.set_num_threads(1)
    env = make_env(env_name, **env_kwargs)
    try:
        run_actor(transport, env, make_base(base_spec, env, seed=cfg.seed), rl, cfg, stop)
    finally:
        transport.close()
        env.close()


def _learner_entry(transport: LocalLearnerTransport, env_name: str, env_kwargs: dict, base_spec: str, rl, cfg,
                   demos: str | None, stop, threads: int) -> None:
    import torch

    from robotlearn.envs import make_env
    from robotlearn.rl.bases import make_base
    from robotlearn.runtime.learner import run_learner

    torch.set_num_threads(threads)
    env = make_env(env_name, **env_kwargs)  # only for its declared spaces and to build the base for relabelling
    base = make_base(base_spec, env, seed=cfg.seed) if demos else None
    result = run_learner(transport, rl, cfg, env.env_info, env.observation_space, demos, base, stop)
    summary = {k: v for k, v in result.items() if k not in ("heartbeats",)}
    (__import__("pathlib").Path(cfg.out_dir) / "summary.json").write_text(json.dumps(summary))
    stop.set()


def spawn_actor(ctx, transport: LocalActorTransport, env_name: str, env_kwargs: dict, base_spec: str, rl, cfg, stop):
    p = ctx.Process(target=_actor_entry, args=(transport, env_name, env_kwargs, base_spec, rl, cfg, stop),
                    name=f"robotlearn-{cfg.actor_id}", daemon=True)
    p.start()
    return p


def spawn_learner(ctx, transport: LocalLearnerTransport, env_name: str, env_kwargs: dict, base_spec: str, rl, cfg,
                  demos: str | None, stop, threads: int = 1):
    p = ctx.Process(target=_learner_entry, name="robotlearn-learner", daemon=True,
                    args=(transport, env_name, env_kwargs, base_spec, rl, cfg, demos, stop, threads))
    p.start()
    return p


def run_local(env_name: str, base_spec: str, rl, learner_cfg, actor_cfg, n_actors: int = 1,
              demos: str | None = None, env_kwargs: dict | None = None, learner_threads: int = 1,
              learner_in_process: bool = True) -> dict[str, Any]:
    """Spawn `n_actors` actor processes and run the learner (here, or in its own process).

    Each actor stops after `actor_cfg.max_env_steps` (set it to the learner's budget
    / n_actors); the learner stops once it has that many steps and has done the
    updates they are owed, then sets the shared stop event. Returns the learner's
    summary (+ `actor_exitcodes`).
    """
    import dataclasses
    from pathlib import Path

    from robotlearn.envs import make_env

    ctx = mp.get_context("spawn")
    env_kwargs = dict(env_kwargs or {})
    probe = make_env(env_name, **env_kwargs)
    state_dim, action_dim = probe.observation_space["state"].shape[0], probe.action_space.shape[0]
    learner_t, actor_ts = make_local_transports(n_actors, ctx, weights_capacity_for(state_dim, action_dim, rl))
    stop = ctx.Event()
    actors = [spawn_actor(ctx, t, env_name, env_kwargs, base_spec, rl,
                          dataclasses.replace(actor_cfg, actor_id=f"actor-{i}", seed=actor_cfg.seed + 1000 * i), stop)
              for i, t in enumerate(actor_ts)]
    try:
        if learner_in_process:
            from robotlearn.rl.bases import make_base
            from robotlearn.runtime.learner import run_learner

            base = make_base(base_spec, probe, seed=learner_cfg.seed) if demos else None

            def crashed() -> bool:  # an actor that died with an error ends the run instead of starving the learner
                return any(p.exitcode not in (None, 0) for p in actors)

            result = run_learner(learner_t, rl, learner_cfg, probe.env_info, probe.observation_space, demos, base,
                                 lambda: stop.is_set() or crashed())
            if crashed():
                raise RuntimeError(f"actor process(es) failed with exit codes {[p.exitcode for p in actors]}; "
                                   f"see their traceback above")
        else:
            lp = spawn_learner(ctx, learner_t, env_name, env_kwargs, base_spec, rl, learner_cfg, demos, stop,
                               learner_threads)
            lp.join()
            if lp.exitcode != 0:
                raise RuntimeError(f"learner process exited with code {lp.exitcode}")
            result = json.loads((Path(learner_cfg.out_dir) / "summary.json").read_text())
    finally:
        stop.set()
        for p in actors:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        probe.close()
    result["actor_exitcodes"] = [p.exitcode for p in actors]
    return result
