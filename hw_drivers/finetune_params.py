"""Parameters of the actor and learner nodes: one YAML (configs/ros2/finetune_*.yaml) read by both.

The robot params file it names also sets the DDS domain / localhost-only discovery,
so the env, the transport and every node of one deployment agree on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from hw_drivers.config import ParamError, _set_dotted, from_dict, read_param_file
from hw_drivers.ros2_transport import Ros2TransportConfig
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig


@dataclass
class BaseConfig:
    """The frozen base policy: zero (residual RL from scratch), a `load_policy` checkpoint, or joint_reach."""

    kind: str = "zero"  # zero | checkpoint | joint_reach (hw_drivers/bases.py, reach tasks)
    checkpoint: str = ""  # kind=checkpoint: a train-bc checkpoint trained on this robot's action space
    gain: float = 0.5  # joint_reach: fraction of the TCP error corrected per step
    bias: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # joint_reach: aiming offset (m)


@dataclass
class TransportParams:
    namespace: str = "/robotlearn"
    transitions_depth: int = 200
    send_queue: int = 200


@dataclass
class FinetuneParams:
    robot_params: str = "ros2/panda_sim.yaml"  # under configs/ (or a path)
    robot_overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys into the robot params
    transport: TransportParams = field(default_factory=TransportParams)
    base: BaseConfig = field(default_factory=BaseConfig)
    demos: str = ""  # zarr demos for the 50/50 demo/online batches ("" -> online only)
    rl: ResidualConfig = field(default_factory=ResidualConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    retry_on_env_error: bool = True  # actor: after a stale topic / refused reset, wait and start a new episode


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`--set a.b=1` pairs -> {"a.b": 1} (values parsed as YAML)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ParamError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def load_finetune(path: str | Path, overrides: Optional[dict[str, Any]] = None) -> FinetuneParams:
    path, data = read_param_file(path)
    for k, v in (overrides or {}).items():
        if k.startswith("robot_overrides."):  # keys under it are dotted themselves
            data.setdefault("robot_overrides", {})[k[len("robot_overrides."):]] = v
        else:
            _set_dotted(data, k, v)
    try:
        return from_dict(FinetuneParams, data)
    except ParamError as e:
        raise ParamError(f"{path}: {e}") from None


def transport_config(fp: FinetuneParams, robot) -> Ros2TransportConfig:
    t = fp.transport
    return Ros2TransportConfig(namespace=t.namespace, transitions_depth=t.transitions_depth, send_queue=t.send_queue,
                               dds=robot.dds)
