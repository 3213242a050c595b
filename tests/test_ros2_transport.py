"""ROS 2 actor/learner transport across two processes over real DDS on loopback."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from std_msgs.msg import UInt8MultiArray

from hw_drivers.config import DdsConfig
from hw_drivers.processes import REPO, node_env, wait_until
from hw_drivers.ros2_transport import (
    Ros2ActorTransport,
    Ros2LearnerTransport,
    Ros2TransportConfig,
    _bytes_msg,
)
from hw_drivers.ros_runtime import LATCHED_QOS, RosNode
from robotlearn.runtime.messages import (
    Episode,
    MessageError,
    decode_weights,
    encode_weights,
    weights_version,
)

DOMAIN = 60 + os.getpid() % 20


def episode(i: int, rows: int = 5) -> bytes:
    arrays = {"state": np.full((rows, 3), i, np.float32), "action": np.zeros((rows, 2), np.float32),
              "base_action": np.zeros((rows, 2), np.float32), "reward": np.zeros(rows, np.float32),
              "is_intervention": np.zeros(rows, bool)}
    return Episode(arrays, success=False, terminated=False, policy_version=i).encode()

LEARNER = """
import json, sys, time, numpy as np
from hw_drivers.config import DdsConfig
from hw_drivers.ros2_transport import Ros2LearnerTransport, Ros2TransportConfig
from robotlearn.runtime.messages import Episode, encode_weights
t = Ros2LearnerTransport(Ros2TransportConfig(dds=DdsConfig(domain_id=int(sys.argv[1]))))
t.publish_weights(encode_weights(1, {"w": np.full(250_000, 1.0, np.float32)}))  # 1 MB
print("published", flush=True)
got, end = [], time.time() + 60
while len(got) < 20 and time.time() < end:
    got += t.recv_episodes(timeout=0.5)
steps = [Episode.decode(p).policy_version for p in got]
t.publish_weights(encode_weights(2, {"w": np.full(250_000, 2.0, np.float32)}, got=len(got)))
time.sleep(1.5)
print(json.dumps({"steps": steps, "actors": sorted(t.heartbeats()), "lost": t.lost}), flush=True)
t.close()
"""


def test_weights_and_episodes_between_processes(tmp_path):
    learner = subprocess.Popen([sys.executable, "-c", LEARNER, str(DOMAIN)], cwd=REPO, env=node_env(DOMAIN),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    actor = None
    try:
        assert learner.stdout.readline().strip() == "published"
        # the actor joins after the weights were published: transient-local delivers them anyway
        actor = Ros2ActorTransport(Ros2TransportConfig(dds=DdsConfig(domain_id=DOMAIN)), actor_id="robot-7")
        w = wait_until(actor.poll_weights, 30, "weights v1 for a late-joining actor", (learner,))
        version, tensors, _ = decode_weights(w)
        assert version == 1 and tensors["w"].nbytes == 1_000_000 and tensors["w"][0] == 1.0
        assert actor.poll_weights() is None  # latest-wins, delivered once
        for i in range(20):
            actor.send_episode(episode(i))
            actor.heartbeat("robot-7", {"steps": i})
        w2 = wait_until(actor.poll_weights, 30, "weights v2", (learner,))
        v2, t2, meta = decode_weights(w2)
        assert v2 == 2 and meta["got"] == 20 and t2["w"][0] == 2.0
        out = json.loads(learner.stdout.read().strip().splitlines()[-1])
        assert out["steps"] == list(range(20))  # reliable and in order
        assert out["actors"] == ["robot-7"] and out["lost"] == {}
        assert learner.wait(10) == 0
    finally:
        if actor is not None:
            actor.close()
        if learner.poll() is None:
            learner.kill()


def test_bad_weight_messages_are_ignored_and_not_published():
    dds = DdsConfig(domain_id=DOMAIN)
    learner = Ros2LearnerTransport(Ros2TransportConfig(dds=dds))
    actor = Ros2ActorTransport(Ros2TransportConfig(dds=dds), actor_id="a")
    rogue = RosNode("rogue", dds)
    try:
        with pytest.raises(MessageError, match="expected a 'weights' message"):
            learner.publish_weights(episode(0))  # the learner itself never publishes non-weights
        pub = rogue.node.create_publisher(UInt8MultiArray, "/robotlearn/weights", LATCHED_QOS)
        pub.publish(_bytes_msg(episode(0)))  # an episode where weights belong
        wait_until(lambda: actor.bad_weights >= 1, 20, "the bad message to arrive")
        assert actor.poll_weights() is None
        learner.publish_weights(encode_weights(5, {"w": np.ones(2, np.float32)}))
        assert weights_version(wait_until(actor.poll_weights, 20, "good weights")) == 5
    finally:
        rogue.close()
        actor.close()
        learner.close()


def test_actor_send_never_blocks_and_drops_oldest_when_queue_full():
    actor = Ros2ActorTransport(Ros2TransportConfig(dds=DdsConfig(domain_id=DOMAIN), send_queue=3), actor_id="b")
    try:
        with actor._cv:  # re-entrant: holding it stalls the sender thread, as a slow DDS write would
            t0 = time.perf_counter()
            for i in range(10):
                actor.send_episode(episode(i, rows=1))
            assert time.perf_counter() - t0 < 0.5
            assert actor.dropped == 7
            assert [Episode.decode(p).policy_version for p in actor._queue] == [7, 8, 9]  # newest kept
        assert actor.flush(5.0)
    finally:
        actor.close()
