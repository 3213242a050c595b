"""ROS 2 bag (MCAP) -> zarr episodes, with a YAML mapping of topics to dataset keys.

Mapping (configs/dataset.yaml shows one):

    control_hz: 10                 # rate of the dataset's steps
    max_staleness: 0.5             # s; a tick whose held message is older is an error (silent topic)
    topics:
      /joint_states: {key: state, field: position, joints: [j1, j2]}   # JointState, optional reorder by name
      /gripper:      {key: state}                                       # several topics -> one key: concatenated in order
      /action:       {key: action}                                      # Float64MultiArray / Float32MultiArray
      /camera/front: {key: images/front}                                # Image (rgb8, bgr8, rgba8, bgra8, mono8)

Time alignment is sample-and-hold: ticks run at control_hz from the first time
every topic has published to the last time any topic is still publishing
(the earliest of the topics' last messages), and each key takes the latest
message at or before the tick. A message's time is its header stamp when it has
a non-zero one, else the bag's log time. One bag file = one episode.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from robotlearn.data.layout import DatasetError
from robotlearn.data.writer import EpisodeWriter

PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
              "uint32", "int64", "uint64", "string", "wstring"}


# --- message -> array -------------------------------------------------------
def _image(msg) -> np.ndarray:
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
    if msg.encoding not in channels:
        raise DatasetError(f"Image encoding {msg.encoding!r} is not supported (have {sorted(channels)})")
    c = channels[msg.encoding]
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    img = rows[:, : msg.width * c].reshape(msg.height, msg.width, c)
    if msg.encoding.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    return np.repeat(img, 3, axis=2) if c == 1 else np.ascontiguousarray(img[..., :3])


def _joint_state(msg, spec: dict) -> np.ndarray:
    values = np.asarray(getattr(msg, spec.get("field", "position")), np.float64)
    if "joints" not in spec:
        return values
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [j for j in spec["joints"] if j not in index]
    if missing:
        raise DatasetError(f"JointState lacks joints {missing} (it has {list(msg.name)})")
    return values[[index[j] for j in spec["joints"]]]


CONVERTERS: dict[str, Callable[[Any, dict], np.ndarray]] = {
    "sensor_msgs/msg/JointState": _joint_state,
    "sensor_msgs/msg/Image": lambda m, s: _image(m),
    "std_msgs/msg/Float64MultiArray": lambda m, s: np.asarray(m.data, np.float64),
    "std_msgs/msg/Float32MultiArray": lambda m, s: np.asarray(m.data, np.float32),
    "std_msgs/msg/Float64": lambda m, s: np.asarray(m.data, np.float64),
    "std_msgs/msg/Float32": lambda m, s: np.asarray(m.data, np.float32),
    "std_msgs/msg/Bool": lambda m, s: np.asarray(m.data, bool),
    "geometry_msgs/msg/PoseStamped": lambda m, s: np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z,
                                                             m.pose.orientation.x, m.pose.orientation.y,
                                                             m.pose.orientation.z, m.pose.orientation.w]),
}


def _normalise_type(name: str) -> str:
    """'sensor_msgs/JointState' and 'sensor_msgs/msg/JointState' are the same type."""
    pkg, _, rest = name.partition("/")
    return f"{pkg}/msg/{rest.split('/')[-1]}"


def _stamp(msg, log_time_ns: int) -> int:
    h = getattr(msg, "header", None)
    if h is not None and (h.stamp.sec or h.stamp.nanosec):
        return int(h.stamp.sec) * 1_000_000_000 + int(h.stamp.nanosec)
    return int(log_time_ns)


# --- reading and aligning -----------------------------------------------------
def read_topics(bag: Path, topics: dict[str, dict]) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """topic -> (times_ns sorted, values) for the mapped topics of one MCAP file."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    got: dict[str, list[tuple[int, np.ndarray]]] = {t: [] for t in topics}
    with open(bag, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for schema, channel, message, msg in reader.iter_decoded_messages(topics=list(topics)):
            kind = _normalise_type(schema.name)
            if kind not in CONVERTERS and "field" not in topics[channel.topic]:
                raise DatasetError(f"{bag}: topic {channel.topic} has type {schema.name}, which has no converter "
                                   f"(supported: {sorted(CONVERTERS)}); give `field:` to read one attribute")
            spec = topics[channel.topic]
            try:
                if kind in CONVERTERS:
                    value = CONVERTERS[kind](msg, spec)
                else:
                    value = np.asarray(getattr(msg, spec["field"]))
            except DatasetError as e:
                raise DatasetError(f"{bag}: topic {channel.topic}: {e}") from None
            got[channel.topic].append((_stamp(msg, message.log_time), value))
    silent = [t for t, v in got.items() if not v]
    if silent:
        raise DatasetError(f"{bag}: mapped topics {silent} have no messages in this bag")
    out = {}
    for t, items in got.items():
        items.sort(key=lambda x: x[0])
        out[t] = (np.array([i[0] for i in items], np.int64), [i[1] for i in items])
    return out


def align(streams: dict[str, tuple[np.ndarray, list[np.ndarray]]], hz: float, max_staleness: float | None,
          where: str = "") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sample-and-hold each stream at ticks of 1/hz: (tick times ns (T,), {topic: (T, ...)})."""
    start = max(times[0] for times, _ in streams.values())
    end = min(times[-1] for times, _ in streams.values())
    period = 1e9 / hz
    ticks = start + np.round(np.arange(int((end - start) // period) + 1) * period).astype(np.int64)
    out = {}
    for topic, (times, values) in streams.items():
        idx = np.searchsorted(times, ticks, side="right") - 1  # latest message at or before each tick
        if max_staleness is not None:
            age = (ticks - times[idx]) / 1e9
            if age.max() > max_staleness:
                i = int(age.argmax())
                raise DatasetError(f"{where}: topic {topic} is silent for {age[i]:.2f} s at t={(ticks[i] - start) / 1e9:.2f} s "
                                   f"(max_staleness={max_staleness} s)")
        shapes = {np.shape(v) for v in values}
        if len(shapes) > 1:
            raise DatasetError(f"{where}: topic {topic} changes shape within the bag: {sorted(shapes)}")
        out[topic] = np.stack(values)[idx]
    return ticks, out


def bag_to_episode(bag: Path, mapping: dict) -> dict[str, np.ndarray]:
    topics = {t: (s if isinstance(s, dict) else {"key": s}) for t, s in mapping["topics"].items()}
    streams = read_topics(bag, topics)
    ticks, per_topic = align(streams, float(mapping["control_hz"]), mapping.get("max_staleness", 0.5), str(bag))
    arrays: dict[str, list[np.ndarray]] = {}
    for topic, spec in topics.items():
        v = per_topic[topic]
        arrays.setdefault(spec["key"], []).append(v.reshape(len(v), -1) if v.ndim == 1 or spec["key"] == "state" else v)
    episode = {k: (np.concatenate(v, axis=1) if len(v) > 1 else v[0]) for k, v in arrays.items()}
    for k in ("state", "action"):
        if k in episode:
            episode[k] = episode[k].astype(np.float32)
    episode["timestamp"] = ticks / 1e9
    return episode


def import_bags(bags: list[str | Path], mapping: dict | str | Path, out: str | Path, success: bool | None = None,
                overwrite: bool = False) -> int:
    """Convert each bag to one episode of `out`; returns the number of episodes written."""
    if not isinstance(mapping, dict):
        mapping = yaml.safe_load(Path(mapping).read_text())
    for req in ("control_hz", "topics"):
        if req not in mapping:
            raise DatasetError(f"bag mapping lacks {req!r} (see robotlearn/data/importers/rosbag.py)")
    files = sorted(p for b in bags for p in (Path(b).glob("*.mcap") if Path(b).is_dir() else [Path(b)]))
    if not files:
        raise DatasetError(f"no .mcap files in {bags}")
    if Path(out).exists() and not overwrite:
        raise DatasetError(f"{out} exists; pass overwrite=true to replace it")
    attrs = {"control_hz": float(mapping["control_hz"]),
             "import": {"from": "ros2 bag", "mapping": mapping, "bags": [str(f) for f in files]}}
    with EpisodeWriter(out, overwrite=overwrite, attrs=attrs) as w:
        ok = bool(mapping.get("success", False) if success is None else success)
        for i, f in enumerate(files):
            ep = bag_to_episode(f, mapping)
            w.add_episode(ep, success=ok, source="human", terminated=ok, bag_index=i,
                          start_time=float(ep["timestamp"][0]), end_time=float(ep["timestamp"][-1]))
    return len(files)


# --- message definitions (for writing bags, e.g. in tests) --------------------
def message_definition(datatype: str) -> str:
    """The ros2msg schema text of an installed message type, with its dependencies appended."""
    pkg, name = datatype.split("/")[0], datatype.split("/")[-1]
    roots = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [Path(sys.prefix)]

    def text(pkg: str, name: str) -> str:
        for r in roots:
            f = r / "share" / pkg / "msg" / f"{name}.msg"
            if f.exists():
                return f.read_text()
        raise FileNotFoundError(f"message definition {pkg}/msg/{name}.msg not found under {roots}")

    main, parts, seen, todo = text(pkg, name), [], set(), [(pkg, text(pkg, name))]
    while todo:
        cur_pkg, body = todo.pop()
        for line in body.splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            typ = re.sub(r"\[.*\]$", "", re.sub(r"<=\d+", "", line.split()[0]))
            if typ in PRIMITIVES:
                continue
            dep_pkg, dep = (typ.split("/")[0], typ.split("/")[-1]) if "/" in typ else (cur_pkg, typ)
            if (dep_pkg, dep) not in seen:
                seen.add((dep_pkg, dep))
                body_dep = text(dep_pkg, dep)
                parts.append(f"{'=' * 80}\nMSG: {dep_pkg}/{dep}\n{body_dep}")
                todo.append((dep_pkg, body_dep))
    return "\n".join([main, *parts])
