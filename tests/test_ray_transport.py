"""The Ray transport on a real local Ray: bytes reach the learner, versions reach every actor."""
import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from robotlearn.runtime import messages  # noqa: E402
from robotlearn.runtime.ray_transport import RayActorTransport, RayLearnerTransport, make_hub  # noqa: E402




@pytest.fixture(scope="module")
def ray_session():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, _temp_dir="/tmp/rl-ray-tt", include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class EchoActor:
    """A minimal actor loop: sends episodes tagged with its id, records every weights version it sees."""

    def run(self, hub, actor_id: str, n_batches: int, rows: int) -> list[int]:
        tr = RayActorTransport(hub, actor_id, flush_s=0.0, poll_s=0.0)
        seen = []
        deadline = time.monotonic() + 30
        i = 0
        while time.monotonic() < deadline and not tr.should_stop():
            if i < n_batches:
                arrays = {"state": np.full((rows, 3), i, np.float32), "action": np.zeros((rows, 2), np.float32),
                          "base_action": np.zeros((rows, 2), np.float32), "reward": np.zeros(rows, np.float32),
                          "is_intervention": np.zeros(rows, bool)}  # (inline: a worker cannot import this module)
                tr.send_episode(messages.Episode(arrays, success=False, terminated=False, policy_version=0,
                                                 actor_id=actor_id).encode())
                i += 1
            upd = tr.poll_weights()
            if upd is not None:
                version, tensors, _ = messages.decode_weights(upd)
                assert float(tensors["w"][0]) == version
                seen.append(version)
                tr.heartbeat(actor_id, {"version": version, "sent": i})
            time.sleep(0.005)
        tr.close()
        return seen


def test_episode_rows_read_from_the_header_only():
    arrays = {"state": np.zeros((7, 3), np.float32), "action": np.zeros((7, 2), np.float32),
              "base_action": np.zeros((7, 2), np.float32), "reward": np.zeros(7, np.float32),
              "is_intervention": np.zeros(7, bool)}
    p = messages.Episode(arrays, success=False, terminated=False, policy_version=0).encode()
    assert messages.Episode.rows(p) == 7
    assert messages.Episode.rows(p[: len(p) - 50]) == 7  # the tensors are not read
    with pytest.raises(messages.MessageError):
        messages.Episode.rows(messages.encode_weights(1, {"w": np.zeros(2, np.float32)}))


def test_transitions_and_versions_flow_both_ways(ray_session):
    hub = make_hub()
    learner = RayLearnerTransport(hub)
    actors = [EchoActor.remote() for _ in range(2)]
    runs = [a.run.remote(hub, f"actor{i}", 20, 5) for i, a in enumerate(actors)]

    got: dict[str, int] = {}
    version = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(got) < 2 or min(got.values()) < 100 or version < 5):
        for payload in learner.recv_episodes(timeout=0.2):
            ep = messages.Episode.decode(payload)
            assert ep.arrays["state"].shape == (5, 3)
            got[ep.actor_id] = got.get(ep.actor_id, 0) + len(ep)
        if got and version < 5:
            version += 1
            learner.publish_weights(messages.encode_weights(version, {"w": np.full(1000, version, np.float32)}))
        time.sleep(0.05)
    ray.get(hub.request_stop.remote())
    seen = ray.get(runs, timeout=30)

    assert got == {"actor0": 100, "actor1": 100}
    for s in seen:  # each actor got newer versions, in order, ending at the latest
        assert s and s == sorted(set(s)) and s[-1] == 5
    stats = learner.stats()
    assert stats["received"]["actor0"]["rows"] == 100 and stats["dropped"] == 0
    beats = learner.heartbeats()
    assert set(beats) == {"actor0", "actor1"} and all(b[1]["version"] == 5 for b in beats.values())


def test_poll_never_blocks_and_stale_versions_are_refused(ray_session):
    hub = make_hub()
    tr = RayActorTransport(hub, "solo", poll_s=0.0)
    t0 = time.perf_counter()
    assert all(tr.poll_weights() is None for _ in range(200))  # nothing published: returns at once
    assert time.perf_counter() - t0 < 2.0
    learner = RayLearnerTransport(hub)
    learner.publish_weights(messages.encode_weights(3, {"w": np.ones(2, np.float32)}))
    with pytest.raises(ray.exceptions.RayTaskError, match="not newer"):
        learner.publish_weights(messages.encode_weights(2, {"w": np.ones(2, np.float32)}))
    deadline = time.monotonic() + 10
    upd = None
    while upd is None and time.monotonic() < deadline:
        upd = tr.poll_weights()
    assert upd is not None and messages.weights_version(upd) == 3
    assert tr.poll_weights() is None  # latest already returned


def test_corrupt_payload_reaches_learner_as_clear_error(ray_session):
    hub = make_hub()
    tr = RayActorTransport(hub, "bad", flush_s=0.0)
    tr.send_episode(b"not a safetensors message at all")
    tr.close()
    learner = RayLearnerTransport(hub)
    (payload,) = learner.recv_episodes(timeout=5)
    with pytest.raises(messages.MessageError, match="header"):
        messages.Episode.decode(payload)
    assert learner.stats()["received"]["bad"]["unreadable"] == 1


def test_signed_ray_wire_drops_what_the_key_did_not_sign(ray_session):
    """runtime.auth_key_file on Ray: a signed actor's episodes arrive unsigned-stripped, a rogue unsigned
    push is dropped and counted, and actors take only weights signed with the key."""
    key = messages.Signer(b"k" * 32)
    hub = make_hub()
    actor = RayActorTransport(hub, "signed", flush_s=0.0, poll_s=0.0, signer=key)
    rogue = RayActorTransport(hub, "rogue", flush_s=0.0)
    learner = RayLearnerTransport(hub, signer=key)
    arrays = {"state": np.zeros((3, 2), np.float32), "action": np.zeros((3, 2), np.float32),
              "base_action": np.zeros((3, 2), np.float32), "reward": np.zeros(3, np.float32),
              "is_intervention": np.zeros(3, bool)}
    ep = messages.Episode(arrays, success=True, terminated=True, policy_version=4).encode()
    actor.send_episode(ep)
    rogue.send_episode(ep)
    actor.close()
    rogue.close()
    got, deadline = [], time.monotonic() + 10
    while len(got) + learner.rejected < 2 and time.monotonic() < deadline:
        got += learner.recv_episodes(timeout=1)
    assert got == [ep] and learner.rejected == 1
    unsigned = RayLearnerTransport(hub)  # a learner without the key publishing weights: actors drop them
    unsigned.publish_weights(messages.encode_weights(1, {"w": np.ones(2, np.float32)}))
    deadline = time.monotonic() + 5
    while actor.bad_weights == 0 and time.monotonic() < deadline:
        assert actor.poll_weights() is None
    assert actor.bad_weights == 1
    learner.publish_weights(messages.encode_weights(2, {"w": np.ones(2, np.float32)}))
    upd, deadline = None, time.monotonic() + 10
    while upd is None and time.monotonic() < deadline:
        upd = actor.poll_weights()
    assert messages.decode_weights(upd)[0] == 2
