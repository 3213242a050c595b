"""ActorTransport / LearnerTransport over ROS 2 topics.

Streams (all payloads are `robotlearn.runtime.messages` bytes in std_msgs/UInt8MultiArray):
  <ns>/transitions       actor -> learner, one encoded Episode per message, reliable keep-last
                         `transitions_depth`; the layout carries (actor_id, sequence number) so
                         the learner counts losses
  <ns>/weights           learner -> actors, reliable + transient-local depth 1: latest wins and
                         an actor that (re)starts gets the current weights at once
  <ns>/heartbeat         actor -> learner, std_msgs/String JSON {actor_id, stats}
  <ns>/learner_heartbeat learner -> actors, std_msgs/String JSON, 1 Hz
With `auth_key_file` set, episode and weights payloads carry an HMAC-SHA256 tag
(`messages.Signer`); unsigned or badly signed ones are dropped and counted
(`unsigned`, `bad_signature`), never decoded. Weights are ordered by (learner run,
version) (`messages.WeightsGate`). No message can raise inside a subscription callback.
The actor publishes from a sender thread, so `send_episode` never blocks the
control loop on DDS; a full send queue drops the oldest episode and counts it.
"""
from __future__ import annotations

import collections
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from std_msgs.msg import MultiArrayDimension, String, UInt8MultiArray

from hw_drivers.config import DdsConfig
from hw_drivers.ros_runtime import LATCHED_QOS, RELIABLE_QOS, RosNode, transitions_qos
from robotlearn.runtime.messages import AuthError, MessageError, Signer, WeightsGate, weights_key, weights_version
from robotlearn.runtime.transport import ActorTransport, LearnerTransport


@dataclass
class Ros2TransportConfig:
    namespace: str = "/robotlearn"
    transitions_depth: int = 200  # episodes the DDS history keeps per actor
    send_queue: int = 200  # actor-side episodes waiting for the sender thread
    dds: DdsConfig = field(default_factory=DdsConfig)
    auth_key_file: Optional[str] = None  # shared key: sign every payload, drop unsigned/badly signed ones


class _Wire:
    """Signing and the drop counters both ends share (no key: payloads pass as they are)."""

    def __init__(self, cfg: Ros2TransportConfig) -> None:
        self.signer = Signer.from_file(cfg.auth_key_file) if cfg.auth_key_file else None
        self.unsigned = 0
        self.bad_signature = 0

    def sign(self, payload: bytes) -> bytes:
        return self.signer.sign(payload) if self.signer else bytes(payload)

    def open(self, blob: bytes) -> bytes:
        """The payload, or AuthError (counted) for a message this end must not trust."""
        if self.signer is None:
            return blob
        try:
            return self.signer.verify(blob)
        except AuthError as e:
            if "unsigned" in str(e):
                self.unsigned += 1
            else:
                self.bad_signature += 1
            raise

    def counts(self) -> dict[str, int]:
        return {"unsigned": self.unsigned, "bad_signature": self.bad_signature}


def _bytes_msg(payload: bytes, label: str = "", seq: int = 0) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(payload), stride=len(payload))]
    msg.layout.data_offset = seq
    msg.data = payload
    return msg


class Ros2ActorTransport(ActorTransport):
    def __init__(self, cfg: Optional[Ros2TransportConfig] = None, actor_id: str = "actor0") -> None:
        self.cfg = cfg or Ros2TransportConfig()
        self.actor_id = actor_id
        ns = self.cfg.namespace
        self.ros = RosNode("robotlearn_actor_transport_" + re.sub(r"\W", "_", actor_id), self.cfg.dds)
        node = self.ros.node
        self._pub_tr = node.create_publisher(UInt8MultiArray, f"{ns}/transitions", transitions_qos(self.cfg.transitions_depth))
        self._pub_hb = node.create_publisher(String, f"{ns}/heartbeat", RELIABLE_QOS)
        self._lock = threading.Lock()
        self.wire = _Wire(self.cfg)
        self.gate = WeightsGate()
        self._latest: Optional[bytes] = None  # the payload the gate last accepted
        self._fresh = False  # _latest not yet returned by poll_weights
        node.create_subscription(UInt8MultiArray, f"{ns}/weights", self._on_weights, LATCHED_QOS)
        self._learner_seen = time.monotonic()  # from start: a learner that never appears also counts as silent
        node.create_subscription(String, f"{ns}/learner_heartbeat", self._on_learner_beat, RELIABLE_QOS)
        self._queue: collections.deque[bytes] = collections.deque()
        self._cv = threading.Condition()
        self._seq = 0
        self.dropped = 0
        self.bad_weights = 0
        self._closed = False
        self._sender = threading.Thread(target=self._send_loop, name="ros2-actor-sender", daemon=True)
        self._sender.start()

    # --- callbacks ---------------------------------------------------------
    def _on_weights(self, msg: UInt8MultiArray) -> None:
        try:  # a callback that raises would stop this node's executor: every failure is logged and counted
            payload = self.wire.open(msg.data.tobytes())
            key = weights_key(payload)
        except MessageError as e:
            self.bad_weights += 1
            self.ros.node.get_logger().error(f"{self.cfg.namespace}/weights: {e}; ignored")
            return
        with self._lock:
            if self.gate.offer(key):
                self._latest, self._fresh = payload, True

    def _on_learner_beat(self, msg: String) -> None:
        self._learner_seen = time.monotonic()

    # --- ActorTransport ----------------------------------------------------
    def learner_silence(self) -> float:
        return time.monotonic() - self._learner_seen

    def send_episode(self, payload: bytes) -> None:
        with self._cv:
            if len(self._queue) >= self.cfg.send_queue:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(bytes(payload))
            self._cv.notify()

    def _send_loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue:
                    return
                payload = self._queue.popleft()
            self._pub_tr.publish(_bytes_msg(self.wire.sign(payload), self.actor_id, self._seq))
            self._seq += 1

    def poll_weights(self) -> Optional[bytes]:
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._latest

    def redeliver(self) -> None:
        """Let the next poll_weights() return the current weights again (a restarted actor loop needs them)."""
        with self._lock:
            self._fresh = self._latest is not None

    def heartbeat(self, actor_id: str, stats: dict) -> None:
        stats = {**stats, "dropped_batches": self.dropped, "bad_weights": self.bad_weights, **self.wire.counts()}
        self._pub_hb.publish(String(data=json.dumps({"actor_id": actor_id, "stats": stats}, default=float)))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the send queue is empty (e.g. before exiting)."""
        end = time.time() + timeout
        while self._queue and time.time() < end:
            time.sleep(0.01)
        return not self._queue

    def close(self) -> None:
        self.flush(2.0)
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._sender.join(timeout=2.0)
        self.ros.close()


class Ros2LearnerTransport(LearnerTransport):
    def __init__(self, cfg: Optional[Ros2TransportConfig] = None, heartbeat_hz: float = 1.0) -> None:
        self.cfg = cfg or Ros2TransportConfig()
        ns = self.cfg.namespace
        self.ros = RosNode("robotlearn_learner_transport", self.cfg.dds)
        node = self.ros.node
        self._pub_w = node.create_publisher(UInt8MultiArray, f"{ns}/weights", LATCHED_QOS)
        self._pub_hb = node.create_publisher(String, f"{ns}/learner_heartbeat", RELIABLE_QOS)
        self._cv = threading.Condition()
        self._inbox: list[bytes] = []
        self._hb: dict[str, tuple[float, dict]] = {}
        self._next_seq: dict[str, int] = {}
        self.lost: dict[str, int] = {}  # actor_id -> batches missing from its sequence
        self.published_version = -1
        self.wire = _Wire(self.cfg)
        node.create_subscription(UInt8MultiArray, f"{ns}/transitions", self._on_transitions,
                                 transitions_qos(self.cfg.transitions_depth))
        node.create_subscription(String, f"{ns}/heartbeat", self._on_heartbeat, RELIABLE_QOS)
        node.create_timer(1.0 / heartbeat_hz, self._beat)

    def _on_transitions(self, msg: UInt8MultiArray) -> None:
        try:
            payload = self.wire.open(msg.data.tobytes())
        except AuthError as e:
            self.ros.node.get_logger().error(f"{self.cfg.namespace}/transitions: {e}; dropped", throttle_duration_sec=5.0)
            return
        actor = msg.layout.dim[0].label if msg.layout.dim else "?"
        seq = int(msg.layout.data_offset)
        expected = self._next_seq.get(actor)
        if expected is not None and seq > expected:
            self.lost[actor] = self.lost.get(actor, 0) + seq - expected
        self._next_seq[actor] = seq + 1
        with self._cv:
            self._inbox.append(payload)
            self._cv.notify_all()

    def _on_heartbeat(self, msg: String) -> None:
        try:
            d = json.loads(msg.data)
            self._hb[str(d["actor_id"])] = (time.time(), dict(d.get("stats", {})))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.ros.node.get_logger().error(f"{self.cfg.namespace}/heartbeat: malformed heartbeat {msg.data!r}: {e}")

    def _beat(self) -> None:
        self._pub_hb.publish(String(data=json.dumps({"version": self.published_version, "time": time.time()})))

    def recv_episodes(self, timeout: float = 0.0) -> list[bytes]:
        with self._cv:
            if not self._inbox and timeout > 0:
                self._cv.wait_for(lambda: bool(self._inbox), timeout=timeout)
            out, self._inbox = self._inbox, []
        return out

    def publish_weights(self, payload: bytes) -> None:
        version = weights_version(payload)
        self._pub_w.publish(_bytes_msg(self.wire.sign(payload), "weights", version))
        self.published_version = version

    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        return dict(self._hb)

    def stats(self) -> dict:
        """What the wire dropped: lost episodes per actor, unsigned / badly signed messages."""
        return {"lost": dict(self.lost), **self.wire.counts()}

    def close(self) -> None:
        self.ros.close()
