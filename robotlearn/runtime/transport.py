"""The only thing actors and learners share: a small transport.

Local processes, ROS 2 and Ray each implement these two halves; the actor and
learner loops in `robotlearn.runtime` never know which one they use. Payloads
are versioned byte messages from `robotlearn.runtime.messages` (safetensors +
JSON header, never pickle), so any transport can carry them as plain bytes.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsUpdate:
    version: int
    payload: bytes  # messages.encode_weights(...)


class ActorTransport(ABC):
    """Actor side. None of these may block the control loop for long."""

    @abstractmethod
    def send_transitions(self, payload: bytes) -> None:
        """Queue an encoded batch of transitions (messages.encode_batch) for the learner."""

    @abstractmethod
    def poll_weights(self) -> WeightsUpdate | None:
        """The newest weights if newer than the last returned, else None. Never blocks."""

    @abstractmethod
    def heartbeat(self, actor_id: str, stats: dict) -> None:
        """Tell the learner this actor is alive (stats: steps, episodes, version, rates)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LearnerTransport(ABC):
    """Learner side."""

    @abstractmethod
    def recv_transitions(self, timeout: float = 0.0) -> list[bytes]:
        """All encoded transition batches that arrived; waits up to `timeout` s for the first."""

    @abstractmethod
    def publish_weights(self, update: WeightsUpdate) -> None:
        """Make `update` the latest weights for every actor (latest-wins, not a queue)."""

    @abstractmethod
    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        """actor_id -> (wall time last seen, last stats)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
