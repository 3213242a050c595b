"""TopicCache, the env's sensor store: newest value, staleness, receipt times and the wait that
`env.step_on_state` locks the control ticks with (its callback fed directly: no DDS needed)."""
import threading
import time

import pytest

from hw_drivers.sensors import BadMessageError, StaleObservationError, TopicCache


class _Node:
    """Stands in for an rclpy node: keeps the subscription callback so the test can deliver messages."""

    def __init__(self):
        self.callbacks = {}

    def create_subscription(self, msg_type, topic, cb, qos):
        self.callbacks[topic] = cb


def _cache():
    def convert(msg):
        if msg < 0:
            raise ValueError("negative")
        return msg

    node, cache = _Node(), TopicCache()
    cache.subscribe(node, int, "/s", None, convert)
    return cache, node.callbacks["/s"]


def test_newest_value_staleness_and_bad_messages():
    cache, deliver = _cache()
    with pytest.raises(StaleObservationError, match="no message"):
        cache.get("/s", 1.0)
    deliver(1)
    deliver(2)
    assert cache.get("/s", 1.0) == 2 and cache.count("/s") == 2
    time.sleep(0.02)
    with pytest.raises(StaleObservationError, match="stale"):
        cache.get("/s", 0.01)
    deliver(-1)
    with pytest.raises(BadMessageError, match="negative"):
        cache.get("/s", 1.0)
    assert cache.peek("/s") is None


def test_period_and_receipt_time():
    cache, deliver = _cache()
    for i in range(8):
        deliver(i)
        time.sleep(0.005)
    assert cache.period("/s") is None  # 7 intervals: not enough to say
    before = time.monotonic()
    deliver(8)
    assert before <= cache.received_at("/s") <= time.monotonic()
    assert 0.004 <= cache.period("/s") < 0.05  # the median is robust to one slow sleep


def test_wait_newer_wakes_on_the_next_message_and_times_out_without_one():
    cache, deliver = _cache()
    deliver(0)
    n = cache.count("/s")
    t0 = time.monotonic()
    assert not cache.wait_newer("/s", n, 0.05)
    assert time.monotonic() - t0 >= 0.05
    timer = threading.Timer(0.02, deliver, args=(1,))
    timer.start()
    assert cache.wait_newer("/s", n, 5.0)  # returns on the message, long before the timeout
    assert time.monotonic() - t0 < 2.0 and cache.get("/s", 1.0) == 1
    timer.join()


def test_wait_new_counts_messages_after_a_mark_and_names_the_silent_topic():
    cache, deliver = _cache()
    deliver(0)
    mark = {"/s": cache.count("/s")}
    with pytest.raises(StaleObservationError, match=r"within 0\.1s on \['/s'\]"):
        cache.wait_new(["/s"], mark, 1, 0.1)
    timers = [threading.Timer(0.01 * (i + 1), deliver, args=(i,)) for i in range(2)]
    for t in timers:
        t.start()
    cache.wait_new(["/s"], mark, 2, 5.0)  # returns once both arrived
    assert cache.count("/s") - mark["/s"] == 2
    for t in timers:
        t.join()
