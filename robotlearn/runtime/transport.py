"""The only thing actors and learners share: a small transport.

Local processes, ROS 2 and Ray each implement these two halves; the actor and
learner loops in `robotlearn.runtime` never know which one they use. Payloads
are versioned byte messages from `robotlearn.runtime.messages` (an encoded
`Episode` one way, encoded weights the other; safetensors + JSON header, never
pickle), so any transport carries them as plain bytes. A weights payload holds
its version in its header (`messages.weights_version`); nothing carries it twice.
"""
from __future__ import annotations

from abc import ABC, abstractmethod


class ActorTransport(ABC):
    """Actor side. None of these may block the control loop for long."""

    @abstractmethod
    def send_episode(self, payload: bytes) -> None:
        """Queue one encoded `Episode` for the learner."""

    @abstractmethod
    def poll_weights(self) -> bytes | None:
        """The newest encoded weights if newer than the last returned, else None. Never blocks."""

    @abstractmethod
    def heartbeat(self, actor_id: str, stats: dict) -> None:
        """Tell the learner this actor is alive (stats: steps, episodes, version, rates)."""

    def learner_silence(self) -> float | None:
        """Seconds since the learner was last heard from (None: this transport cannot tell)."""
        return None

    def redeliver(self) -> None:  # noqa: B027 - optional hook
        """Let the next poll_weights() return the current weights again (a restarted actor loop needs them)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LearnerTransport(ABC):
    """Learner side."""

    @abstractmethod
    def recv_episodes(self, timeout: float = 0.0) -> list[bytes]:
        """All encoded episodes that arrived; waits up to `timeout` s for the first."""

    @abstractmethod
    def publish_weights(self, payload: bytes) -> None:
        """Make these encoded weights the latest for every actor (latest-wins, not a queue)."""

    @abstractmethod
    def heartbeats(self) -> dict[str, tuple[float, dict]]:
        """actor_id -> (wall time last seen, last stats)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
