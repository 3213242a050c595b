"""ROS 2 message <-> numpy, with validation that names the topic and field.

Every inbound message goes through one of these before it is used, so a
mis-wired driver (wrong joint order, an image of the wrong size or encoding,
a command with NaN) is a clear error, never a silently wrong observation or
a robot command.
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hw_drivers.config import CameraConfig, CommandConfig
from hw_drivers.safety import UnsafeCommandError, check_finite

# Float64MultiArray layout label naming the JointState stamp a command was computed from; forward
# controllers ignore the layout; the robot side (MuJoCo node, safety bridge) measures observation-to-command
# latency with it and drops commands older than robot.max_command_age_s (command_gate.py).
STAMP_LABEL = "obs_stamp_ns="


def command_obs_stamp(msg) -> int | None:
    dims = getattr(getattr(msg, "layout", None), "dim", None)
    if dims and dims[0].label.startswith(STAMP_LABEL):
        try:
            return int(dims[0].label[len(STAMP_LABEL):])
        except ValueError:
            return None
    return None


class MessageFormatError(ValueError):
    """An inbound message that does not match the robot description."""


# --- joint state --------------------------------------------------------------
def joint_state_to_arrays(msg: JointState, joint_names: Sequence[str], topic: str) -> tuple[np.ndarray, np.ndarray]:
    """(q, dq) for `joint_names`, in that order, from a JointState with any joint order."""
    names = list(msg.name)
    if len(msg.position) != len(names):
        raise MessageFormatError(f"{topic}: JointState has {len(names)} names but {len(msg.position)} positions")
    if len(msg.velocity) not in (0, len(names)):
        raise MessageFormatError(f"{topic}: JointState has {len(names)} names but {len(msg.velocity)} velocities")
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in joint_names if n not in index]
    if missing:
        raise MessageFormatError(f"{topic}: JointState.name lacks joints {missing} (got {names})")
    idx = [index[n] for n in joint_names]
    q = np.asarray(msg.position, np.float64)[idx]
    dq = np.asarray(msg.velocity, np.float64)[idx] if len(msg.velocity) else np.zeros(len(idx))
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(dq))):
        raise MessageFormatError(f"{topic}: JointState has non-finite position/velocity: {q.tolist()} {dq.tolist()}")
    return q, dq


def make_joint_state(names: Sequence[str], q, dq, stamp) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(x) for x in q]
    msg.velocity = [float(x) for x in dq]
    return msg


# --- images -------------------------------------------------------------------
def image_to_array(msg: Image | CompressedImage, cam: CameraConfig) -> np.ndarray:
    """uint8 (H, W, 3) RGB from an Image/CompressedImage matching the camera's declared size/encoding."""
    if isinstance(msg, CompressedImage):
        from PIL import Image as PILImage

        try:
            img = np.asarray(PILImage.open(io.BytesIO(bytes(msg.data))).convert("RGB"))
        except Exception as e:  # PIL raises many types for corrupt data
            raise MessageFormatError(f"{cam.topic}: CompressedImage ({msg.format!r}) does not decode: {e}") from e
    else:
        if msg.encoding not in ("rgb8", "bgr8"):
            raise MessageFormatError(f"{cam.topic}: Image.encoding is {msg.encoding!r}, expected {cam.encoding!r}")
        if msg.encoding != cam.encoding:
            raise MessageFormatError(f"{cam.topic}: Image.encoding is {msg.encoding!r}, expected {cam.encoding!r}")
        h, w = int(msg.height), int(msg.width)
        if msg.step != w * 3 or len(msg.data) != h * w * 3:
            raise MessageFormatError(f"{cam.topic}: Image data has {len(msg.data)} bytes, step {msg.step}, "
                                     f"which does not fit {h}x{w}x3 {msg.encoding}")
        img = np.frombuffer(bytes(msg.data), np.uint8).reshape(h, w, 3)
        if msg.encoding == "bgr8":
            img = img[..., ::-1]
    if img.shape != (cam.height, cam.width, 3):
        raise MessageFormatError(f"{cam.topic}: image is {img.shape[0]}x{img.shape[1]}, "
                                 f"expected {cam.height}x{cam.width} (robot.cameras[{cam.name}])")
    return np.ascontiguousarray(img)


def array_to_image(img: np.ndarray, cam: CameraConfig, stamp, frame_id: str = "") -> Image | CompressedImage:
    """An RGB uint8 (H, W, 3) array as the camera's configured message type."""
    if cam.msg_type == "compressed":
        from PIL import Image as PILImage

        buf = io.BytesIO()
        PILImage.fromarray(img).save(buf, format="PNG")
        msg = CompressedImage()
        msg.format = "png"
        msg.data = buf.getvalue()
    else:
        msg = Image()
        msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
        msg.encoding = cam.encoding
        msg.step = int(img.shape[1]) * 3
        data = img[..., ::-1] if cam.encoding == "bgr8" else img
        msg.data = np.ascontiguousarray(data).tobytes()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id or cam.name
    return msg


# --- joint commands -----------------------------------------------------------
def make_command(values, cfg: CommandConfig, joint_names: Sequence[str], dt: float) -> Float64MultiArray | JointTrajectory:
    """Position (or velocity) command as the configured controller expects it."""
    values = [float(x) for x in values]
    if cfg.msg_type == "joint_trajectory":
        msg = JointTrajectory()
        msg.joint_names = list(joint_names)
        pt = JointTrajectoryPoint()
        pt.positions = values
        sec = int(dt)
        pt.time_from_start = Duration(sec=sec, nanosec=int((dt - sec) * 1e9))
        msg.points = [pt]
        return msg
    msg = Float64MultiArray()
    msg.data = values
    return msg


def parse_command(msg, cfg: CommandConfig, joint_names: Sequence[str]) -> np.ndarray:
    """Joint values (in `joint_names` order) from a command message; raises on anything malformed."""
    topic, n = cfg.topic, len(joint_names)
    if isinstance(msg, JointTrajectory):
        if not msg.points:
            raise MessageFormatError(f"{topic}: JointTrajectory has no points")
        names = list(msg.joint_names)
        if sorted(names) != sorted(joint_names):
            raise MessageFormatError(f"{topic}: JointTrajectory.joint_names {names} != robot joints {list(joint_names)}")
        pos = list(msg.points[-1].positions)
        if len(pos) != n:
            raise MessageFormatError(f"{topic}: JointTrajectory point has {len(pos)} positions for {n} joints")
        vals = check_finite(pos, f"{topic}: JointTrajectory.points[-1].positions", names)
        return vals[[names.index(j) for j in joint_names]]
    data = list(msg.data)
    if len(data) != n:
        raise MessageFormatError(f"{topic}: Float64MultiArray.data has {len(data)} values for {n} joints {list(joint_names)}")
    return check_finite(data, f"{topic}: Float64MultiArray.data", list(joint_names))


__all__ = [
    "STAMP_LABEL", "command_obs_stamp", "MessageFormatError", "UnsafeCommandError", "joint_state_to_arrays", "make_joint_state",
    "image_to_array", "array_to_image", "make_command", "parse_command",
]
