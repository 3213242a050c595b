"""Robot description and node parameters, loaded from YAML into typed dataclasses.

One file in `configs/ros2/` describes a robot the way its ROS 2 driver exposes it
(topics, message types, limits), so the same description drives the MuJoCo robot
node, `Ros2RobotEnv` and the launch files. Unknown keys are an error naming the
file and the key: a typo in a safety limit must never silently fall back to a default.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml


class ParamError(ValueError):
    """A parameter file that does not match the schema (unknown key, wrong type, bad value)."""


@dataclass
class CameraConfig:
    name: str
    topic: str
    msg_type: str = "image"  # image (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)
    height: int = 64
    width: int = 64
    encoding: str = "rgb8"  # Image only; rgb8 or bgr8
    mujoco_camera: str = ""  # MuJoCo node: camera to render ("" -> free camera)


@dataclass
class CommandConfig:
    """How joint commands reach the controller (as ros2_control controllers expect them)."""

    topic: str = "/forward_position_controller/commands"
    msg_type: str = "float64_multi_array"  # float64_multi_array | joint_trajectory
    mode: str = "position"  # position | velocity (forward velocity controller; Float64MultiArray only)


@dataclass
class GripperConfig:
    command_topic: str = ""  # "" -> no gripper; std_msgs/Float64MultiArray [position]
    joint_names: list[str] = field(default_factory=list)  # gripper joints in the JointState
    low: float = 0.0  # physical command that normalised -1 maps to (open)
    high: float = 1.0  # physical command that normalised +1 maps to (closed)


@dataclass
class WorkspaceConfig:
    """Cartesian box for the end effector; needs forward kinematics (an MJCF + site)."""

    low: list[float] = field(default_factory=list)  # [] -> no workspace limit
    high: list[float] = field(default_factory=list)
    mjcf: str = ""  # model for FK on the env side ("" -> only the MuJoCo node, which has its own model)
    site: str = ""  # end-effector site name in that model
    mjcf_joints: list[str] = field(default_factory=list)  # MJCF joints in robot.joint_names order ([] -> same names)


@dataclass
class LimitsConfig:
    joint_lower: list[float] = field(default_factory=list)
    joint_upper: list[float] = field(default_factory=list)
    max_velocity: list[float] = field(default_factory=list)  # rad/s, per joint
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)


@dataclass
class InterventionConfig:
    """Human takeover: a Joy (deadman + axes) or a teleop command topic in normalised action space."""

    msg_type: str = "none"  # none | joy | command
    topic: str = ""
    deadman_button: int = 0  # Joy: intervene while this button is held
    axes: list[int] = field(default_factory=list)  # Joy: axis index per action dimension (-1: none -> 0)
    scale: float = 1.0  # Joy: axis value * scale -> normalised action
    timeout_s: float = 0.25  # command: a teleop message older than this no longer overrides


@dataclass
class StalenessConfig:
    state_s: float = 0.25
    camera_s: float = 0.5
    task_state_s: float = 0.5
    wait_first_s: float = 10.0  # how long reset() waits for every topic's first message


@dataclass
class RobotDescription:
    name: str
    joint_names: list[str]
    state_topic: str = "/joint_states"
    command: CommandConfig = field(default_factory=CommandConfig)
    gripper: GripperConfig = field(default_factory=GripperConfig)
    cameras: list[CameraConfig] = field(default_factory=list)
    reset_service: str = "/robot/reset"
    estop_topic: str = "/robot/estop"  # std_msgs/Bool, True latches the stop
    success_topic: str = ""  # std_msgs/Bool from the task (sim or a detector)
    label_topic: str = ""  # std_msgs/Bool from a human: True success, False failure
    task_state_topic: str = ""  # std_msgs/Float64MultiArray appended to the state (e.g. goal, object pose)
    task_state_dim: int = 0
    status_topic: str = "/robot/status"  # std_msgs/String JSON from the robot node (watchdog, e-stop)
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    control_hz: float = 20.0
    staleness: StalenessConfig = field(default_factory=StalenessConfig)
    watchdog_timeout_s: float = 0.3  # robot side: hold position when commands stop this long
    # Robot side (MuJoCo node, safety bridge): a command whose observation stamp (the JointState stamp the env
    # echoes in the Float64MultiArray layout label) is older than this, by the robot side's wall clock, is stale:
    # not applied, and it neither feeds the watchdog nor releases its hold. None (unset) -> watchdog_timeout_s
    # (older than that, the watchdog has already given up on it); 0 -> no age check. Stamps more than
    # COMMAND_CLOCK_SKEW_S (command_gate.py) in the future are rejected too. Needs the JointState stamper and
    # the robot side on synchronised wall clocks (same computer, or chrony/NTP); unstamped commands
    # (JointTrajectory, plain controllers) cannot be checked and are accepted as before.
    max_command_age_s: Optional[float] = None

    def command_age_limit_s(self) -> Optional[float]:
        """The stale-command age limit in seconds, None when the check is off (max_command_age_s = 0)."""
        limit = self.watchdog_timeout_s if self.max_command_age_s is None else self.max_command_age_s
        return limit if limit > 0 else None


@dataclass
class DdsConfig:
    domain_id: int = -1  # -1 -> leave ROS_DOMAIN_ID as it is
    localhost_only: bool = True  # sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST


@dataclass
class SimConfig:
    """MuJoCo robot node only: which sim task to serve and how."""

    task: str = "sim/reach"
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    publish_hz: float = 100.0  # JointState rate; physics catches up with the wall clock each tick
    camera_hz: float = 10.0
    seed: int = 0
    ee_site: str = "panda/tcp"  # end-effector site in the task model (workspace limit on the robot side)
    gripper_joints: list[str] = field(default_factory=list)  # task joints behind robot.gripper.joint_names


@dataclass
class BridgeConfig:
    """Safety bridge node (real robots): subscribes robot.command.topic, publishes the controller's topic."""

    output_topic: str = "/forward_position_controller/commands"  # the ros2_control controller's command topic
    rate_hz: float = 100.0  # the safe target is re-sent at this rate (a hold is a command too)
    home_service: str = ""  # std_srvs/Trigger the reset service forwards to ("" -> reset only re-arms in place)
    status_topic: str = "/robotlearn/bridge_status"


@dataclass
class EnvParams:
    """`Ros2RobotEnv` options beyond the robot description."""

    # joint_delta (normalised step, max_velocity*dt) | joint_pos (over limits) | ee_delta: the sim tasks'
    # `ee_delta_pos+gripper` action (xyz TCP step of up to ee_max_delta m, orientation held), turned into
    # joint targets by damped-least-squares IK on the workspace MJCF, then the same safety layer
    action_mode: str = "joint_delta"
    horizon: int = 100
    include_velocity: bool = True  # state = q (+ dq) (+ TCP xyz) (+ gripper width) (+ task state)
    include_tcp: bool = False  # TCP position by forward kinematics (needs robot.limits.workspace.mjcf + site)
    ee_max_delta: float = 0.02  # ee_delta: metres per step that a normalised +-1 means (sim tasks: 0.02)
    ee_quat: list[float] = field(default_factory=lambda: [0.0, 1.0, 0.0, 0.0])  # ee_delta: held TCP orientation
    ee_home_q: list[float] = field(default_factory=list)  # ee_delta: null-space posture ([]: none)
    ee_target_low: list[float] = field(default_factory=list)  # ee_delta: TCP target box ([]: the workspace box)
    ee_target_high: list[float] = field(default_factory=list)
    # ee_delta: step from the last TCP target instead of the measured TCP (kept within ee_max_delta of it), so
    # the TCP moves by the sum of the commanded steps once the servo catches up (robotlearn/envs/kinematics.py);
    # the sim tasks' `ee_integrate`, and checkpoints move only between envs that agree on it
    ee_integrate: bool = False
    reset_timeout_s: float = 10.0
    terminate_on_success: bool = True
    # Step on the robot's JointState stream: each step ends on the first JointState within half a state period
    # of its tick and the next tick counts from that arrival (phase-locked), so the policy acts on a state one
    # DDS hop old instead of up to one publish period old, as in ros2_control's read-update-write cycle. Used
    # where a control period is a whole number of state periods (measured from arrivals); otherwise, or false,
    # a step ends at its tick on the newest cached state.
    step_on_state: bool = True


@dataclass
class NodeParams:
    """Everything a node reads from `configs/ros2/<robot>.yaml`."""

    robot: RobotDescription
    dds: DdsConfig = field(default_factory=DdsConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    env: EnvParams = field(default_factory=EnvParams)


# --- loading ------------------------------------------------------------------
def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(schema: type, data: Any, where: str = "") -> Any:
    """Build dataclass `schema` from a mapping; unknown or missing keys raise ParamError naming `where`."""
    if not isinstance(data, dict):
        raise ParamError(f"{where or 'top level'}: expected a mapping for {schema.__name__}, got {data!r}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamError(f"{where or 'top level'}: unknown key(s) {unknown} (known: {sorted(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}" if where else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamError(f"{where or 'top level'}: missing required key {name!r}")
    return schema(**kwargs)


def validate(p: NodeParams, where: str) -> NodeParams:
    """Cross-field checks: limit lengths, enum values, rates."""
    r, n = p.robot, len(p.robot.joint_names)
    lim = r.limits
    for key in ("joint_lower", "joint_upper", "max_velocity"):
        if len(getattr(lim, key)) != n:
            raise ParamError(f"{where}: robot.limits.{key} has {len(getattr(lim, key))} values, "
                             f"expected one per joint ({n}: {r.joint_names})")
    if any(lo >= hi for lo, hi in zip(lim.joint_lower, lim.joint_upper)):
        raise ParamError(f"{where}: robot.limits.joint_lower must be < joint_upper for every joint")
    if any(v <= 0 for v in lim.max_velocity):
        raise ParamError(f"{where}: robot.limits.max_velocity must be > 0")
    ws = lim.workspace
    if (ws.low or ws.high) and (len(ws.low) != 3 or len(ws.high) != 3):
        raise ParamError(f"{where}: robot.limits.workspace.low/high need 3 values (x, y, z)")
    checks = [
        ("robot.command.msg_type", r.command.msg_type, ("float64_multi_array", "joint_trajectory")),
        ("robot.command.mode", r.command.mode, ("position", "velocity")),
        ("robot.intervention.msg_type", r.intervention.msg_type, ("none", "joy", "command")),
        ("env.action_mode", p.env.action_mode, ("joint_delta", "joint_pos", "ee_delta")),
    ] + [(f"robot.cameras[{i}].msg_type", c.msg_type, ("image", "compressed")) for i, c in enumerate(r.cameras)] \
      + [(f"robot.cameras[{i}].encoding", c.encoding, ("rgb8", "bgr8")) for i, c in enumerate(r.cameras)]
    for key, val, allowed in checks:
        if val not in allowed:
            raise ParamError(f"{where}: {key} = {val!r}, expected one of {allowed}")
    if r.command.mode == "velocity" and r.command.msg_type != "float64_multi_array":
        raise ParamError(f"{where}: robot.command.mode=velocity needs msg_type float64_multi_array")
    if r.watchdog_timeout_s <= 0:
        raise ParamError(f"{where}: robot.watchdog_timeout_s must be > 0")
    if r.max_command_age_s is not None and r.max_command_age_s < 0:
        raise ParamError(f"{where}: robot.max_command_age_s must be >= 0 (0: no stale-command check; "
                         f"unset: watchdog_timeout_s)")
    if r.control_hz <= 0 or p.sim.publish_hz <= 0:
        raise ParamError(f"{where}: robot.control_hz and sim.publish_hz must be > 0")
    if r.task_state_topic and r.task_state_dim <= 0:
        raise ParamError(f"{where}: robot.task_state_topic needs robot.task_state_dim > 0")
    e = p.env
    if (e.action_mode == "ee_delta" or e.include_tcp) and not (ws.mjcf and ws.site):
        raise ParamError(f"{where}: env.action_mode=ee_delta and env.include_tcp need the robot's kinematics: "
                         f"robot.limits.workspace.mjcf and .site")
    if e.action_mode == "ee_delta":
        if e.ee_max_delta <= 0:
            raise ParamError(f"{where}: env.ee_max_delta must be > 0 (m per step), got {e.ee_max_delta}")
        if len(e.ee_quat) != 4 or abs(sum(x * x for x in e.ee_quat) - 1.0) > 1e-3:
            raise ParamError(f"{where}: env.ee_quat must be a unit quaternion (w, x, y, z), got {e.ee_quat}")
        if e.ee_home_q and len(e.ee_home_q) != n:
            raise ParamError(f"{where}: env.ee_home_q needs one value per joint ({n}), got {len(e.ee_home_q)}")
        box_low, box_high = e.ee_target_low or ws.low, e.ee_target_high or ws.high
        if len(box_low) != 3 or len(box_high) != 3 or any(lo >= hi for lo, hi in zip(box_low, box_high)):
            raise ParamError(f"{where}: env.action_mode=ee_delta needs a TCP target box: env.ee_target_low/high "
                             f"or robot.limits.workspace.low/high, 3 values each with low < high")
    return p


def read_param_file(path: str | Path, _seen: tuple = ()) -> tuple[Path, dict[str, Any]]:
    """(path, mapping) of a parameter YAML; a missing file is a ParamError naming it.

    `extends: <file>` (relative to this file's folder) starts from that file: mappings merge
    key by key, anything else (lists included) is replaced.
    """
    path = Path(path)
    if not path.exists() and not path.is_absolute():  # `configs/ros2/x.yaml` or `ros2/x.yaml` from any folder
        from robotlearn.envs import find_config

        path = find_config(path) or path
    if not path.exists():
        raise ParamError(f"parameter file {path} does not exist")
    if path.resolve() in _seen:
        raise ParamError(f"{path}: `extends` loops back to itself")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping at the top level")
    parent = data.pop("extends", None)
    if parent is None:
        return path, data
    if not isinstance(parent, str):
        raise ParamError(f"{path}: extends must be a file name, got {parent!r}")
    _, base = read_param_file(path.parent / parent, (*_seen, path.resolve()))
    return path, _merge(base, data)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


RECORDED = "<recorded robot params>"  # where params given as content (from a dataset or checkpoint) came from


def param_content(source: str | Path | dict) -> tuple[str, dict[str, Any]]:
    """(where, mapping) of robot params given as a file (`extends` resolved) or as their content."""
    if isinstance(source, dict):
        if "extends" in source:
            raise ParamError(f"{RECORDED}: `extends` needs a file; recorded params are complete")
        return RECORDED, json_copy(source)
    path, data = read_param_file(source)
    return str(path), data


def json_copy(d: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of plain YAML/JSON data (what a dataset's attributes can hold)."""
    import json

    return json.loads(json.dumps(d))


def load_params(path: str | Path | dict, overrides: Optional[dict[str, Any]] = None) -> NodeParams:
    """Read a node parameter YAML, or params recorded as content, (+ overrides) into `NodeParams`.

    Overrides are dotted keys (`dds.domain_id: 7`) or nested mappings (`dds: {domain_id: 7}`); both merge
    into the section, so the section's other keys keep their values."""
    path, data = param_content(path)
    for key, val in (overrides or {}).items():
        _set_dotted(data, key, val)
    try:
        params = from_dict(NodeParams, data)
    except ParamError as e:
        raise ParamError(f"{path}: {e}") from None
    return validate(params, str(path))


def _set_dotted(data: dict, key: str, val: Any) -> None:
    *parents, last = key.split(".")
    for k in parents:
        data = data.setdefault(k, {})
    data[last] = _merge(data[last], val) if isinstance(val, dict) and isinstance(data.get(last), dict) else val


def to_dict(p: Any) -> dict[str, Any]:
    return dataclasses.asdict(p)


def apply_dds(d: DdsConfig) -> None:
    """Set the DDS environment before rclpy.init: domain id and localhost-only discovery."""
    import os

    if d.domain_id >= 0:
        os.environ["ROS_DOMAIN_ID"] = str(d.domain_id)
    if d.localhost_only:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def ros2_config_path(name: str) -> str:
    """ros2/<name>: from the ROS 2 package share folder when installed, else from the config directories
    (the user's, then the ones robotlearn ships)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory("robotlearn")) / "config" / "ros2" / name)
    except Exception:  # ament_index missing or package not installed as a ROS 2 package
        from robotlearn.envs import config_root, find_config

        return str(find_config(f"ros2/{name}") or config_root() / "ros2" / name)
