"""A fine-tuning run written down once: `RunSpec`, and the runtime configs it can name.

The CLI (`robotlearn finetune`, hydra groups under configs/), the ROS 2 nodes (a
spec file such as configs/ros2/finetune_panda_sim.yaml) and every process a
runtime starts all get the same `RunSpec`. It crosses a process boundary as one
JSON document (`to_json` / `from_json`), validated by the same loader as the
files. The dataclasses here and in `rl/residual.py`, `runtime/actor.py`,
`runtime/learner.py` hold the only defaults; YAML files hold what a profile changes.
`runtime/assembly.py` turns a spec into an actor or a learner.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from robotlearn.config import (
    ConfigError,
    apply_overrides,
    compose,
    read_yaml,
    register_schema,
    to_dataclass,
)
from robotlearn.rewards.sources import check_reward
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.learner import LearnerConfig


@dataclass
class LocalRuntimeConfig:
    """runtime=local: actor processes and the learner on this machine (runtime/local.py)."""

    name: str = "local"
    num_actors: int = 1  # actor processes, each with its own env and residual-policy copy
    learner_in_process: bool = True  # learner in the command's process (progress bar); False = its own process
    learner_threads: int = 1  # torch CPU threads in the learner


@dataclass
class RayRuntimeConfig:
    """runtime=ray: actor workers and the learner as Ray actors (runtime/ray_runtime.py)."""

    name: str = "ray"
    num_actors: int = 2  # actor workers, each with its own env and residual-policy copy
    address: Optional[str] = None  # None: start a local Ray; "auto" / "<head ip>:6379" / "ray://<head>:10001": join
    num_cpus: Optional[int] = None  # local Ray only: CPUs to declare (None: max(cores, what the workers ask for))
    actor_cpus: float = 1.0  # CPUs reserved per actor worker (fractions allowed to oversubscribe a laptop)
    learner_cpus: float = 1.0
    learner_gpus: str = "auto"  # "auto": 1 if the cluster has a GPU, else 0; or "0" / "1"
    learner_threads: int = 1  # torch threads in the learner (CPU)
    max_restarts: int = 3  # Ray restarts per actor worker after a crash (-1: unlimited)
    flush_s: float = 0.05  # actor: max seconds an episode waits before it is pushed to the hub
    poll_s: float = 0.05  # actor: seconds between weight-version queries
    max_queue_mb: int = 256  # hub: episodes queued for the learner before the oldest are dropped
    stop_timeout_s: float = 30.0  # after the learner finished: wait this long for actors to exit
    temp_dir: str = "/tmp/robotlearn-ray"  # local Ray session files (keep the path short: socket name limit)
    # A shared secret file (>= 16 bytes) every worker can read: episodes and weights are signed (HMAC-SHA256)
    # and unsigned or badly signed ones dropped. None: unsigned (Ray's own cluster auth still applies).
    auth_key_file: Optional[str] = None


@dataclass
class Ros2RuntimeConfig:
    """runtime=ros2: the actor node on the robot's computer, the learner node anywhere on the DDS domain.

    The domain and discovery settings come from the robot params file the env names, so the
    env, the transport and every node of one deployment agree on them.
    """

    name: str = "ros2"
    num_actors: int = 1  # robots (actor nodes) feeding the learner
    namespace: str = "/robotlearn"  # topic prefix of the episode, weights and heartbeat streams
    transitions_depth: int = 200  # episodes DDS keeps if the learner is briefly slow
    send_queue: int = 200  # actor side: episodes waiting for the sender thread before the oldest is dropped
    learner_threads: int = 1  # torch CPU threads in the learner
    # A shared secret (>= 16 bytes; `head -c 32 /dev/urandom > key; chmod 600 key`): every episode and weights
    # message is signed (HMAC-SHA256) and unsigned or badly signed ones are dropped and counted. None: unsigned.
    auth_key_file: Optional[str] = None


RUNTIMES: dict[str, type] = {"local": LocalRuntimeConfig, "ray": RayRuntimeConfig, "ros2": Ros2RuntimeConfig}
for _name, _schema in RUNTIMES.items():  # configs/runtime/<name>.yaml start from `<name>_schema`
    register_schema(f"{_name}_schema", _schema, group="runtime")


def runtime_config(runtime: Any) -> Any:
    """A runtime block (dict / DictConfig / typed) -> its typed config, chosen by `name`."""
    if dataclasses.is_dataclass(runtime):
        rt = runtime
    else:
        name = (runtime or {}).get("name", "local")
        if name not in RUNTIMES:
            raise ConfigError(f"unknown runtime {name!r}: use one of {sorted(RUNTIMES)}")
        rt = to_dataclass(runtime or {}, RUNTIMES[name], where="runtime")
    if rt.num_actors < 1:
        raise ConfigError(f"runtime.num_actors must be >= 1, got {rt.num_actors}")
    if getattr(rt, "learner_threads", 1) < 1:
        raise ConfigError(f"runtime.learner_threads must be >= 1, got {rt.learner_threads}")
    return rt


@dataclass
class RunSpec:
    """Everything a residual fine-tuning run is made of."""

    # Registered env name (configs/env/<name>.yaml) or an env config (`_target_` + kwargs), as make_env takes.
    env: Any = None
    # Frozen base: a registered base `name[:arg]` (zero, expert[:noise], joint_reach, ...) or a checkpoint path.
    base: str = "zero"
    base_kwargs: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the base's factory
    demos: Optional[str] = None  # zarr demos, relabelled with the base's actions, for the demo half of each batch
    # Read the demos' arrays under robotlearn names, {array: key} (robotlearn/data/keys.py), e.g. {agent_pos: state}.
    # Typed Any: a dict field with a None default would need hydra's `+demo_keys=` on the command line.
    demo_keys: Optional[Any] = None
    # env: the env's own success detector; classifier:<dir>: a train-reward checkpoint; label: a human's
    # label on the robot's label topic (ROS 2 robots with robot.label_topic)
    reward: str = "env"
    seed: int = 0  # actor i resets from seed + 1000 i (+ 100000 per restart); the learner samples from seed
    rl: ResidualConfig = field(default_factory=ResidualConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    # Which runtime carries the run and its options: LocalRuntimeConfig | RayRuntimeConfig | Ros2RuntimeConfig.
    runtime: dict[str, Any] = field(default_factory=lambda: {"name": "local"})

    def __post_init__(self) -> None:
        self.runtime = runtime_config(self.runtime)
        if not self.env:
            raise ConfigError("the run needs env=<name>, e.g. env=sim/reach")
        if isinstance(self.env, dict):
            from robotlearn.envs.registry import check_required

            check_required(self.env, "the run's env")
        if self.demos == "":
            self.demos = None
        check_reward(self.reward)

    def run_fields(self) -> dict[str, Any]:
        """The RunSpec fields only (a subclass such as the finetune command's config adds its own)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(RunSpec)}

    def to_json(self) -> str:
        return json.dumps({k: _plain(v) for k, v in self.run_fields().items()})

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"run spec is not JSON: {e}") from None
        return to_dataclass(data, RunSpec, where="run spec")

    def absolute(self) -> "RunSpec":
        """Paths made absolute: workers may start in another folder, or on another node of a shared FS."""
        base = os.path.abspath(self.base) if os.path.exists(self.base) else self.base
        demos = os.path.abspath(self.demos) if self.demos and "://" not in self.demos else self.demos
        learner = dataclasses.replace(self.learner, out_dir=os.path.abspath(self.learner.out_dir))
        return dataclasses.replace(self, base=base, demos=demos, learner=learner)


def _plain(v: Any) -> Any:
    return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v


def load_spec(source: str, overrides: list[str] = (), schema: type = RunSpec) -> Any:
    """A spec from a YAML file (`path/to/spec.yaml`, or one under configs/) or a hydra config name
    (`finetune`: configs/finetune.yaml with its groups), plus `key=value` overrides.

    In a file, `env: <name>` is expanded to that env's config first, so `env.params=...` overrides work.
    """
    if not source.endswith((".yaml", ".yml")):
        return to_dataclass(compose(source, list(overrides)), schema)
    from omegaconf import OmegaConf

    from robotlearn.envs import env_config

    cfg = read_yaml(source)
    if isinstance(cfg.get("env"), str):
        try:
            cfg.env = OmegaConf.create(env_config(cfg.env))
        except KeyError as e:
            raise ConfigError(f"{source}: {e.args[0]}") from None
    return to_dataclass(apply_overrides(cfg, list(overrides), where=source), schema, where=source)


def wire_signer(runtime: Any):
    """The `messages.Signer` of a runtime with an `auth_key_file`, else None."""
    from robotlearn.runtime.messages import Signer

    path = getattr(runtime, "auth_key_file", None)
    return Signer.from_file(path) if path else None
