"""Fault suite, the wire: any bytes decode to a message or a MessageError, forged weights cannot latch
out the learner, NaN weights are refused, and a signed wire drops what the key did not sign."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from std_msgs.msg import UInt8MultiArray

from hw_drivers.config import DdsConfig
from hw_drivers.processes import wait_until
from hw_drivers.ros2_transport import Ros2ActorTransport, Ros2LearnerTransport, Ros2TransportConfig, _bytes_msg
from hw_drivers.ros_runtime import LATCHED_QOS, RELIABLE_QOS, RosNode
from robotlearn.runtime.messages import (
    AuthError,
    Episode,
    MessageError,
    Signer,
    WeightsGate,
    decode_weights,
    encode_weights,
    weights_key,
)

DOMAIN = 80 + os.getpid() % 20
N_FUZZ = 3000  # mutated messages per kind; ~2 s


def _episode(i: int = 0, rows: int = 6) -> bytes:
    arrays = {"state": np.full((rows, 3), i, np.float32), "action": np.zeros((rows, 2), np.float32),
              "base_action": np.zeros((rows, 2), np.float32), "reward": np.zeros(rows, np.float32),
              "is_intervention": np.zeros(rows, bool), "images/front": np.zeros((rows, 4, 4, 3), np.uint8)}
    return Episode(arrays, success=False, terminated=False, policy_version=i, actor_id="a").encode()


def _weights(version: int = 1, run: str = "good", value: float = 1.0) -> bytes:
    return encode_weights(version, {"w": np.full(4, value, np.float32), "b": np.zeros(2, np.float32)}, run=run)


def _header(obj) -> bytes:
    h = json.dumps(obj).encode()
    return len(h).to_bytes(8, "little") + h


def _decoders():
    return [Episode.decode, decode_weights, weights_key, Episode.rows]


def _mutations(payload: bytes, rng: np.random.Generator):
    n = len(payload)
    for _ in range(N_FUZZ):
        b = bytearray(payload)
        kind = rng.integers(6)
        if kind == 0:  # bit flips anywhere
            for i in rng.integers(0, n, rng.integers(1, 8)):
                b[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # truncation
            b = b[: int(rng.integers(0, n))]
        elif kind == 2:  # bytes inside the JSON header
            hl = int.from_bytes(payload[:8], "little")
            for i in rng.integers(8, 8 + hl, rng.integers(1, 4)):
                b[i] = int(rng.integers(32, 127))
        elif kind == 3:  # a lying header length
            b[:8] = int(rng.integers(0, 1 << 62)).to_bytes(8, "little")
        elif kind == 4:  # garbage appended
            b += rng.integers(0, 256, rng.integers(1, 64)).astype(np.uint8).tobytes()
        else:  # random bytes
            b = bytearray(rng.integers(0, 256, rng.integers(0, 200)).astype(np.uint8).tobytes())
        yield bytes(b)


HOSTILE_HEADERS = [
    {"__metadata__": [1, 2]},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": "[1]"}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": 1e300}'}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": -1}'}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": true}'}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": 3, "run": [1]}'}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": 3, "backlog_steps": "9"}'},
     "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": 3, "num_updates": 1e300}'},
     "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
    {"__metadata__": {"kind": "episode", "schema": "2", "meta": '{"success": 1}'}, "reward": 5},
    {"__metadata__": {"kind": "episode", "schema": "2", "meta": "{}"}, "reward": {"shape": "x"}},
    {"__metadata__": {"kind": "episode", "schema": "2", "meta": "{}"},
     "reward": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}},
    {"__metadata__": {"kind": "weights", "schema": "2", "meta": '{"version": 2}'},
     "w": {"dtype": "F32", "shape": [1 << 30, 1 << 30], "data_offsets": [0, 4]}},
    [1, 2, 3],
    "weights",
    None,
]


def test_decoders_raise_only_message_error_on_any_input():
    rng = np.random.default_rng(0)
    tried = decoded = 0
    cases = [_header(h) for h in HOSTILE_HEADERS] + [_header(h) + b"\0" * 16 for h in HOSTILE_HEADERS]
    for payload in (_episode(), _weights()):
        cases += list(_mutations(payload, rng))
    for blob in cases:
        for decode in _decoders():
            tried += 1
            try:
                decode(blob)
                decoded += 1
            except MessageError:
                pass
    assert tried >= 4 * 2 * N_FUZZ and decoded < tried  # every failure was a MessageError (anything else raises)


def test_nan_weights_are_refused_at_decode():
    with pytest.raises(MessageError, match="non-finite"):
        decode_weights(_weights(value=float("nan")))
    assert decode_weights(_weights())[0] == 1


@pytest.mark.parametrize("key,value", [("backlog_steps", "9"), ("backlog_steps", -1), ("backlog_steps", 1e300),
                                       ("backlog_steps", True), ("num_updates", [1])])
def test_weights_counters_are_checked_at_decode(key, value):
    """The actor holds on backlog_steps: a wrong type or sign is a MessageError, never an int() traceback."""
    bad = encode_weights(1, {"w": np.ones(2, np.float32)}, **{key: value})
    with pytest.raises(MessageError, match=key):
        decode_weights(bad)
    assert decode_weights(encode_weights(1, {"w": np.ones(2, np.float32)}, backlog_steps=7))[2]["backlog_steps"] == 7


def test_forged_huge_version_cannot_latch_out_the_learner():
    gate = WeightsGate()
    assert gate.offer(weights_key(_weights(1, "good")))
    assert gate.offer(weights_key(_weights(10**15, "evil")))  # unsigned wire: a forgery gets in once ...
    assert gate.offer(weights_key(_weights(2, "good")))  # ... and the learner's next message replaces it
    assert not gate.offer(weights_key(_weights(1, "good")))  # within a run versions must rise
    assert gate.current == ("good", 2)


def test_signer_accepts_its_key_only():
    s, other = Signer(b"k" * 32), Signer(b"x" * 32)
    p = _weights(3)
    blob = s.sign(p)
    assert s.verify(blob) == p and weights_key(blob) == ("good", 3)  # headers stay readable when signed
    with pytest.raises(AuthError, match="unsigned"):
        s.verify(p)
    with pytest.raises(AuthError, match="bad signature"):
        other.verify(blob)
    tampered = bytearray(blob)
    tampered[len(p) // 2] ^= 1
    with pytest.raises(AuthError, match="bad signature"):
        s.verify(bytes(tampered))
    with pytest.raises(MessageError):
        decode_weights(blob)  # a signed blob is never decoded before its tag is checked and stripped
    with pytest.raises(ValueError, match="too short"):
        Signer(b"short")


def test_signed_ros2_wire_drops_forgeries_and_survives_garbage(tmp_path):
    """A rogue node on the domain: unsigned weights with version 10^15, a corrupt header, an unsigned
    episode. The signed actor and learner drop and count them and keep working."""
    key = tmp_path / "auth.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    dds = DdsConfig(domain_id=DOMAIN)
    cfg = Ros2TransportConfig(dds=dds, auth_key_file=str(key))
    learner, actor = Ros2LearnerTransport(cfg), Ros2ActorTransport(cfg, actor_id="a")
    rogue = RosNode("rogue_wire", dds)
    try:
        pub_w = rogue.node.create_publisher(UInt8MultiArray, "/robotlearn/weights", LATCHED_QOS)
        pub_e = rogue.node.create_publisher(UInt8MultiArray, "/robotlearn/transitions", RELIABLE_QOS)
        wait_until(lambda: pub_w.get_subscription_count() and pub_e.get_subscription_count(), 20, "discovery")
        pub_w.publish(_bytes_msg(_weights(10**15, "evil")))
        wait_until(lambda: actor.wire.unsigned >= 1, 20, "the forged weights to arrive")
        pub_w.publish(_bytes_msg(Signer(b"y" * 32).sign(_weights(10**15, "evil"))))
        wait_until(lambda: actor.wire.bad_signature >= 1, 20, "the badly signed weights to arrive")
        pub_w.publish(_bytes_msg(_header({"__metadata__": [1, 2]})))
        wait_until(lambda: actor.bad_weights >= 3, 20, "the corrupt header to arrive")
        assert actor.poll_weights() is None
        learner.publish_weights(_weights(5, "good"))
        got = wait_until(actor.poll_weights, 20, "the learner's signed weights")
        assert weights_key(got) == ("good", 5) and decode_weights(got)[0] == 5  # handed over unsigned-stripped
        pub_e.publish(_bytes_msg(_episode(9), "rogue", 0))
        wait_until(lambda: learner.wire.unsigned >= 1, 20, "the unsigned episode to arrive")
        actor.send_episode(_episode(1))
        eps = wait_until(lambda: learner.recv_episodes(0.1), 20, "the actor's signed episode")
        assert [Episode.decode(p).policy_version for p in eps] == [1]
        assert learner.stats()["unsigned"] == 1
    finally:
        rogue.close()
        actor.close()
        learner.close()


def test_auth_key_file_errors_are_one_line(tmp_path):
    from robotlearn.config import ConfigError

    with pytest.raises(ConfigError, match="auth_key_file .*missing.key"):
        Signer.from_file(str(tmp_path / "missing.key"))
    (tmp_path / "short.key").write_bytes(b"abc")
    with pytest.raises(ConfigError, match="too short"):
        Signer.from_file(str(tmp_path / "short.key"))


@pytest.mark.parametrize("mode", ["hold", "continue"])
def test_ros2_actor_reports_a_silent_learner_and_holds_or_continues(mode, caplog):
    """The learner's 1 Hz heartbeat stops: the actor says so once, then holds (no env steps) or keeps acting
    on its last weights; when the learner is back, a held actor steps again."""
    import threading
    import time

    from robotlearn.envs import make_env
    from robotlearn.policies.base import ZeroPolicy
    from robotlearn.rl.residual import ResidualConfig
    from robotlearn.runtime.actor import ActorConfig, run_actor

    dds = DdsConfig(domain_id=DOMAIN)
    learner = Ros2LearnerTransport(Ros2TransportConfig(dds=dds), heartbeat_hz=5.0)
    actor_t = Ros2ActorTransport(Ros2TransportConfig(dds=dds), actor_id="silent")
    env = make_env("sim/reach")
    steps = [0]
    inner = env.step

    def counting(action):
        steps[0] += 1
        return inner(action)

    env.step = counting
    stop = threading.Event()
    cfg = ActorConfig(actor_id="silent", pace_hz=100, learner_timeout_s=1.0, on_learner_lost=mode)
    th = threading.Thread(target=run_actor, args=(actor_t, env, ZeroPolicy(4), ResidualConfig(num_critics=2,
                          hidden_dim=16, warmup_env_steps=0), cfg, stop), daemon=True)
    try:
        wait_until(lambda: actor_t.learner_silence() < 0.5, 20, "the learner's heartbeat")
        th.start()
        wait_until(lambda: steps[0] > 50, 20, "the actor to step")
        learner.close()  # the learner is gone
        wait_until(lambda: "no learner heartbeat" in caplog.text, 20, "the actor to report the silent learner")
        before = steps[0]
        time.sleep(1.0)
        if mode == "hold":
            assert steps[0] - before <= 1  # held: the env is not stepped
            learner = Ros2LearnerTransport(Ros2TransportConfig(dds=dds), heartbeat_hz=5.0)
            wait_until(lambda: steps[0] > before + 20, 20, "the held actor to step again once the learner is back")
            assert "the learner is back" in caplog.text
        else:
            assert steps[0] - before > 20  # kept acting on its last weights
        assert caplog.text.count("no learner heartbeat") == 1  # said once, not every step
    finally:
        stop.set()
        th.join(10)
        actor_t.close()
        learner.close()
        env.close()
