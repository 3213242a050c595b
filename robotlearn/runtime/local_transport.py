"""Local transport: actor and learner processes on one machine, bytes only.

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

from robotlearn.runtime.messages import weights_version
from robotlearn.runtime.transport import ActorTransport, LearnerTransport

_EPISODE, _HEARTBEAT = b"E", b"H"


class WeightsSlot:
    """A fixed-capacity shared-memory buffer holding the latest weights message."""

    def __init__(self, ctx, capacity: int) -> None:
        self.capacity = capacity
        self.buf = ctx.RawArray("B", capacity)
        self.length = ctx.RawValue("q", 0)
        self.version = ctx.RawValue("q", -1)
        self.lock = ctx.Lock()

    def write(self, payload: bytes) -> None:
        n, version = len(payload), weights_version(payload)
        if n > self.capacity:
            raise ValueError(f"weights message of {n} bytes exceeds the local weights slot ({self.capacity} bytes); "
                             f"raise weights_capacity")
        with self.lock:
            memoryview(self.buf).cast("B")[:n] = payload
            self.length.value = n
            self.version.value = version

    def read_if_newer(self, seen: int) -> tuple[int, bytes] | None:
        if self.version.value <= seen:  # lock-free check: the common case costs nothing
            return None
        with self.lock:
            n, v = self.length.value, self.version.value
            return v, bytes(memoryview(self.buf).cast("B")[:n])


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

    def send_episode(self, payload: bytes) -> None:
        self._send(_EPISODE + payload)

    def poll_weights(self) -> bytes | None:
        update = self.slot.read_if_newer(self._seen)
        if update is None:
            return None
        self._seen, payload = update
        return payload

    def redeliver(self) -> None:
        self._seen = -1

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

    def recv_episodes(self, timeout: float = 0.0) -> list[bytes]:
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

    def publish_weights(self, payload: bytes) -> None:
        self.slot.write(payload)

    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        return dict(self._beats)


def make_local_transports(n_actors: int, ctx=None, weights_capacity: int = 64 << 20
                          ) -> tuple[LocalLearnerTransport, list[LocalActorTransport]]:
    """One learner transport + `n_actors` actor transports sharing one weights slot."""
    ctx = ctx or mp.get_context("spawn")
    slot = WeightsSlot(ctx, weights_capacity)
    pipes = [ctx.Pipe(duplex=False) for _ in range(n_actors)]  # (recv end, send end)
    return LocalLearnerTransport([r for r, _ in pipes], slot), [LocalActorTransport(s, slot) for _, s in pipes]


def weights_capacity_for(state_dim: int, action_dim: int, rl: Any,
                         image_shapes: dict[str, tuple[int, ...]] | None = None) -> int:
    """Bytes the actor's weights message needs, with headroom: the fp32 tensors of the residual actor (and, with
    rl.encoder=drq, of its camera encoder for `image_shapes`), counted on the networks themselves, plus a header."""
    from robotlearn.rl.residual import ResidualPolicy

    policy = ResidualPolicy(state_dim, action_dim, rl, image_shapes=image_shapes)
    modules = [policy.net, *([policy.encoder] if policy.encoder is not None else [])]
    n = sum(v.numel() for m in modules for v in m.state_dict().values())
    return int(n * 4 * 1.5) + (1 << 16)
