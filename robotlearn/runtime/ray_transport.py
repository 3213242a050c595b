"""Ray implementation of the actor-learner transport.

One small `Hub` Ray actor is the rendezvous point: actors push encoded
episodes to it, the learner drains them; the learner `ray.put`s each
weights payload once and hands the hub only the ObjectRef, so a new version is
one object in the object store that every actor fetches itself (same node:
shared memory; other nodes: Ray's object transfer), never a copy per actor.

Everything that crosses a process here is `bytes` from
`robotlearn.runtime.messages`, a JSON string (heartbeat stats) or an ObjectRef
to such bytes; no Python object of ours is pickled. Actor calls never block on
the learner: pushes are fire-and-forget (bounded in flight), weights are
fetched in the background with `ray.wait(timeout=0, fetch_local=True)`.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from typing import Any

import ray

from robotlearn.runtime.messages import Episode, MessageError, Signer, weights_version
from robotlearn.runtime.transport import ActorTransport, LearnerTransport


@ray.remote(num_cpus=0, max_restarts=0)
class Hub:
    """Mailbox between actors and learner: episode queue, latest weights ref, heartbeats.

    An asyncio actor, so a learner waiting in `drain(timeout)` does not block
    actors pushing. The queue is bounded in bytes; when the learner falls far
    behind the oldest episodes are dropped and counted (actors never wait).
    """

    def __init__(self, max_queue_bytes: int = 256 * 2**20) -> None:
        self.queue: deque[bytes] = deque()
        self.queue_bytes = 0
        self.max_queue_bytes = max_queue_bytes
        self.arrived = asyncio.Event()
        self.weights: tuple[int, list] | None = None  # (version, [ObjectRef]) - list keeps the ref unresolved
        self.beats: dict[str, tuple[float, str]] = {}
        self.received: dict[str, dict[str, int]] = {}  # actor_id -> payloads, rows, bytes
        self.registrations: dict[str, list[int]] = {}  # actor_id -> pids, one per (re)start
        self.dropped = 0
        self.stop = False

    # --- actor side ---------------------------------------------------------
    async def register(self, actor_id: str, pid: int) -> int:
        """Called by every (re)started actor worker; returns its incarnation (0 = first start)."""
        self.registrations.setdefault(actor_id, []).append(pid)
        return len(self.registrations[actor_id]) - 1

    async def push(self, actor_id: str, payloads: list[bytes], incarnation: int = 0) -> None:
        c = self.received.setdefault(actor_id, {"payloads": 0, "rows": 0, "bytes": 0, "rows_by_incarnation": {}})
        by_inc = c["rows_by_incarnation"]
        for p in payloads:
            self.queue.append(p)  # malformed bytes still go on: the learner's decode names the problem
            self.queue_bytes += len(p)
            c["payloads"] += 1
            c["bytes"] += len(p)
            try:
                rows = Episode.rows(p)
                c["rows"] += rows
                by_inc[str(incarnation)] = by_inc.get(str(incarnation), 0) + rows
            except MessageError:
                c.setdefault("unreadable", 0)
                c["unreadable"] += 1
        while self.queue_bytes > self.max_queue_bytes and len(self.queue) > 1:
            self.queue_bytes -= len(self.queue.popleft())
            self.dropped += 1
        self.arrived.set()

    async def latest(self, known_version: int) -> tuple[int, list, bool] | tuple[None, None, bool]:
        """(version, [ref], stop) if a newer version than `known_version` exists, else (None, None, stop)."""
        if self.weights is not None and self.weights[0] > known_version:
            return self.weights[0], self.weights[1], self.stop
        return None, None, self.stop

    async def heartbeat(self, actor_id: str, stats_json: str) -> None:
        self.beats[actor_id] = (time.time(), stats_json)

    # --- learner side -------------------------------------------------------
    async def drain(self, timeout: float) -> list[bytes]:
        if not self.queue and timeout > 0:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        out = list(self.queue)
        self.queue.clear()
        self.queue_bytes = 0
        return out

    async def set_weights(self, version: int, ref_list: list) -> None:
        if self.weights is not None and version <= self.weights[0]:
            raise ValueError(f"weights version {version} is not newer than published {self.weights[0]}")
        self.weights = (version, ref_list)

    async def heartbeats(self) -> str:
        return json.dumps(self.beats)

    async def request_stop(self) -> None:
        self.stop = True

    async def stop_requested(self) -> bool:
        return self.stop

    async def stats(self) -> str:
        """JSON: per-actor received counts (also per incarnation), registrations (pids per start), drops, version."""
        return json.dumps(
            {
                "received": self.received,
                "registrations": self.registrations,
                "dropped": self.dropped,
                "queued": len(self.queue),
                "version": None if self.weights is None else self.weights[0],
                "stop": self.stop,
            }
        )


def make_hub(max_queue_bytes: int = 256 * 2**20, name: str | None = None) -> Any:
    """Start a hub (tiny; CPU 0). A `name` lets workers find it with `get_hub(name)` after a restart."""
    return Hub.options(name=name).remote(max_queue_bytes) if name else Hub.remote(max_queue_bytes)


def get_hub(hub: Any) -> Any:
    """A hub handle from a handle or a hub name."""
    return ray.get_actor(hub) if isinstance(hub, str) else hub


class RayActorTransport(ActorTransport):
    """Actor half (`hub`: a handle or the hub's name). Batches payloads locally and flushes every `flush_s` or `flush_bytes`.

    `poll_weights` keeps at most one version query and one object fetch in
    flight and only ever looks at them with zero timeout, so it returns in
    microseconds whether or not the learner has published anything.
    """

    def __init__(
        self,
        hub: Any,
        actor_id: str,
        flush_s: float = 0.05,
        flush_bytes: int = 1 << 20,
        poll_s: float = 0.05,
        max_inflight: int = 16,
        signer: Signer | None = None,
    ) -> None:
        """`signer`: sign episodes and accept only weights signed with the same key (`auth_key_file`)."""
        self.hub, self.actor_id = get_hub(hub), actor_id
        self.signer = signer
        self.bad_weights = 0
        self.flush_s, self.flush_bytes, self.poll_s, self.max_inflight = flush_s, flush_bytes, poll_s, max_inflight
        self.incarnation = ray.get(self.hub.register.remote(actor_id, os.getpid()))
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._last_flush = time.monotonic()
        self._inflight: list = []
        self._version = -1
        self._query = None  # ref to hub.latest(...)
        self._next_check = 0.0  # monotonic time before which poll_weights makes no Ray call
        self._fetch: tuple[int, Any] | None = None  # (version, ref to payload bytes)
        self.stop_requested = False

    def send_episode(self, payload: bytes) -> None:
        payload = self.signer.sign(payload) if self.signer else bytes(payload)
        self._buf.append(payload)
        self._buf_bytes += len(payload)
        if self._buf_bytes >= self.flush_bytes or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buf:
            return
        self._inflight.append(self.hub.push.remote(self.actor_id, self._buf, self.incarnation))
        self._buf, self._buf_bytes = [], 0
        if len(self._inflight) > self.max_inflight // 2:
            _, self._inflight = ray.wait(self._inflight, num_returns=len(self._inflight), timeout=0)
        if len(self._inflight) > self.max_inflight:  # hub far behind: bound memory (rare; hub only appends)
            ray.get(self._inflight.pop(0))

    def poll_weights(self) -> bytes | None:
        now = time.monotonic()
        if self._buf and now - self._last_flush >= self.flush_s:
            self.flush()
        if now < self._next_check:  # the common case: no Ray call at all
            return None
        self._next_check = now + self.poll_s
        if self._fetch is None:
            self._check_query(now)
        if self._fetch is not None:
            version, ref = self._fetch
            ready, _ = ray.wait([ref], timeout=0, fetch_local=True)
            if ready:
                self._fetch = None
                self._version = version
                self._next_check = now  # a newer version may already be waiting
                payload = ray.get(ref)
                if self.signer is None:
                    return payload
                try:
                    return self.signer.verify(payload)
                except MessageError:
                    self.bad_weights += 1
                    return None
            self._next_check = now + min(self.poll_s, 0.002)  # transfer under way: look again soon
        return None

    def _check_query(self, now: float) -> None:
        """Advance the one in-flight `hub.latest` query; start a new one when none is pending."""
        if self._query is None:
            self._query = self.hub.latest.remote(self._version)
        ready, _ = ray.wait([self._query], timeout=0)
        if not ready:
            self._next_check = now + min(self.poll_s, 0.002)  # answer due within ~1 ms: look again soon
            return
        version, ref_list, stop = ray.get(self._query)
        self._query = None
        self.stop_requested = bool(stop)
        if version is not None and version > self._version:
            self._fetch = (version, ref_list[0])
            self._next_check = now  # start the fetch on the next call

    def redeliver(self) -> None:
        self._version = -1

    def should_stop(self) -> bool:
        """True once the driver asked actors to finish (seen through the weights poll)."""
        if self._fetch is None and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.poll_s
            self._check_query(time.monotonic())
        return self.stop_requested

    def heartbeat(self, actor_id: str, stats: dict) -> None:
        stats = {**stats, "pid": os.getpid(), "incarnation": self.incarnation, "node": ray.get_runtime_context().get_node_id()}
        self.hub.heartbeat.remote(actor_id, json.dumps(stats, default=float))

    def close(self) -> None:
        self.flush()
        if self._inflight:
            ray.get(self._inflight)
            self._inflight = []


class RayLearnerTransport(LearnerTransport):
    """Learner half: drains the hub, `ray.put`s each weights payload exactly once."""

    def __init__(self, hub: Any, signer: Signer | None = None) -> None:
        """`signer`: sign weights and drop episodes not signed with the same key (counted in `rejected`)."""
        self.hub = get_hub(hub)
        self.signer = signer
        self.rejected = 0
        self._ref = None  # keep the latest weights object owned and alive here too

    def recv_episodes(self, timeout: float = 0.0) -> list[bytes]:
        got = ray.get(self.hub.drain.remote(float(timeout)))
        if self.signer is None:
            return got
        out = []
        for blob in got:
            try:
                out.append(self.signer.verify(blob))
            except MessageError:
                self.rejected += 1
        return out

    def publish_weights(self, payload: bytes) -> None:
        version = weights_version(payload)
        ref = ray.put(self.signer.sign(payload) if self.signer else bytes(payload))
        ray.get(self.hub.set_weights.remote(version, [ref]))
        self._ref = ref

    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        beats = json.loads(ray.get(self.hub.heartbeats.remote()))
        return {k: (t, json.loads(s)) for k, (t, s) in beats.items()}

    def stats(self) -> dict:
        return json.loads(ray.get(self.hub.stats.remote()))


class HubStopFlag:
    """`stop` callable for a loop: True once the driver asked to stop; asks the hub at most every `every_s`."""

    def __init__(self, hub: Any, every_s: float = 1.0) -> None:
        self.hub, self.every_s = get_hub(hub), every_s
        self._last, self._stop = 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last >= self.every_s:
            self._last = now
            self._stop = bool(ray.get(self.hub.stop_requested.remote()))
        return self._stop
