"""One run spec, one assembly: the local, Ray and ROS 2 entry points build the same actor and learner.

Each runtime hands its processes the spec over its own channel: the local and Ray
runtimes as one JSON document (`RunSpec.to_json` -> `RunSpec.from_json` in the
child), the ROS 2 nodes as a spec YAML file + `--set` overrides (`node_common.parse`).
Whatever the channel, `build_actor` / `build_learner` must then produce the same base,
residual config, spaces and seeds.
"""
import dataclasses

import numpy as np
import pytest
import yaml

from robotlearn.config import ConfigError
from robotlearn.policies.base import ZeroPolicy
from robotlearn.rl.residual import ResidualConfig
from robotlearn.runtime.actor import ActorConfig
from robotlearn.runtime.assembly import build_actor, build_learner
from robotlearn.runtime.learner import LearnerConfig
from robotlearn.runtime.spec import (
    LocalRuntimeConfig,
    RayRuntimeConfig,
    Ros2RuntimeConfig,
    RunSpec,
    load_spec,
)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> str:
    from robotlearn.cli import collect

    path = tmp_path_factory.mktemp("demos") / "reach.zarr"
    assert collect.main(["env=sim/reach", "episodes=2", "noise=0.3", f"out={path}", "progress=false"]) == 0
    return str(path)


def actor_facts(parts) -> dict:
    """What an actor is made of, comparably: base (type + settings), residual config, actor config, spaces."""
    base = parts.base
    return {"base": (type(base).__name__, getattr(base, "noise", None), base.action_dim),
            "rl": dataclasses.asdict(parts.rl), "cfg": dataclasses.asdict(parts.cfg),
            "obs": {k: s.shape for k, s in parts.env.observation_space.spaces.items()},
            "action": parts.env.action_space.shape, "env": parts.env.name}


def learner_facts(parts) -> dict:
    return {"base": type(parts.base).__name__, "rl": dataclasses.asdict(parts.rl),
            "cfg": dataclasses.asdict(parts.cfg), "demos": parts.demos, "env": parts.env.env_info,
            "obs": {k: s.shape for k, s in parts.env.observation_space.spaces.items()},
            "action": parts.env.action_space.shape}


def spec_through_each_runtime(tmp_path, data: dict, overrides: list[str]) -> dict[str, RunSpec]:
    """The spec as each runtime's child process receives it."""
    from hw_drivers.node_common import parse

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**data, "runtime": {"name": "ros2"}}))
    _, ros2 = parse("test", ["--params", str(path), *[a for o in overrides for a in ("--set", o)]])
    # one actor everywhere (Ray's default is 2, and the learner's budget is shared out over them)
    local = load_spec(str(path), [*overrides, "runtime={name: local, num_actors: 1}"])
    ray = load_spec(str(path), [*overrides, "runtime={name: ray, num_actors: 1}"])
    return {"ros2": ros2, "local": RunSpec.from_json(local.to_json()), "ray": RunSpec.from_json(ray.to_json())}


@pytest.mark.parametrize("base", ["expert:0.3", "zero"])
def test_every_runtime_builds_the_same_actor_and_learner(tmp_path, demos, base):
    data = {"env": "sim/reach", "base": base, "demos": demos, "seed": 7,
            "rl": {"num_critics": 2, "hidden_dim": 32, "explore_corr": 0.5},
            "actor": {"heartbeat_s": 0.5}, "learner": {"out_dir": str(tmp_path / "run"), "max_env_steps": 900}}
    specs = spec_through_each_runtime(tmp_path, data, ["rl.utd=2", "env.horizon=40"])
    assert {type(s.runtime) for s in specs.values()} == {LocalRuntimeConfig, RayRuntimeConfig, Ros2RuntimeConfig}
    actors, learners = {}, {}
    for name, spec in specs.items():
        a = build_actor(spec, index=2)
        try:
            actors[name] = actor_facts(a)
        finally:
            a.env.close()
        learners[name] = learner_facts(build_learner(spec))
    assert actors["local"] == actors["ray"] == actors["ros2"]
    assert learners["local"] == learners["ray"] == learners["ros2"]
    a, L = actors["local"], learners["local"]
    assert a["rl"] == dataclasses.asdict(ResidualConfig(num_critics=2, hidden_dim=32, explore_corr=0.5, utd=2))
    assert a["cfg"]["seed"] == 7 + 2000 and a["cfg"]["actor_id"] == "actor-2"  # seed + 1000 x index
    assert a["cfg"]["max_env_steps"] == 900 and a["cfg"]["heartbeat_s"] == 0.5  # one actor: the whole budget
    assert a["env"] == L["env"].name == "sim/reach" and L["env"].horizon == 40
    assert a["obs"] == L["obs"] and a["action"] == L["action"] == (4,)
    assert L["cfg"]["seed"] == 7 and L["demos"] == demos
    # the scripted expert reads the live sim: the learner keeps the demos' recorded actions (no base);
    # the zero base is replayable, so the learner relabels the demos with it
    if base.startswith("expert"):
        assert a["base"][0] != "ZeroPolicy" and a["base"][1] == pytest.approx(0.3) and L["base"] == "NoneType"
    else:
        assert a["base"][0] == L["base"] == "ZeroPolicy"


def test_budgets_seeds_and_restarts_are_derived_in_one_place(tmp_path):
    spec = RunSpec(env="sim/reach", seed=3, rl=ResidualConfig(warmup_env_steps=100),
                   learner=LearnerConfig(out_dir=str(tmp_path), max_env_steps=1000),
                   runtime=RayRuntimeConfig(num_actors=3))
    parts = [build_actor(spec, i) for i in range(3)]
    restarted = build_actor(spec, 1, restart=2)
    try:
        assert [p.cfg.seed for p in parts] == [3, 1003, 2003]
        assert [p.cfg.max_env_steps for p in parts] == [334] * 3  # the learner's budget, shared out
        assert restarted.cfg.seed == 1003 + 200_000 and restarted.rl.warmup_env_steps == 0
        assert parts[1].rl.warmup_env_steps == 100
        assert all(isinstance(p.base, ZeroPolicy) for p in parts)
    finally:
        for p in [*parts, restarted]:
            p.env.close()
    explicit = dataclasses.replace(spec, actor=ActorConfig(max_env_steps=50))
    p = build_actor(explicit, 0)
    p.env.close()
    assert p.cfg.max_env_steps == 50  # an actor's own budget wins


def test_learner_describes_a_ros2_robot_without_starting_ros():
    import rclpy

    spec = load_spec("ros2/finetune_panda_sim.yaml", ["learner.out_dir=/tmp/unused", "base=zero"])
    parts = build_learner(spec)
    assert not rclpy.ok()  # no ROS context was created: the params file alone gives the spaces
    assert parts.env.name == "ros2/panda_sim" and parts.env.action_space.shape == (8,)
    assert parts.env.env_info.action_spec.kind == "joint_delta+gripper"
    assert parts.env.observation_space["state"].shape == (7 + 7 + 1 + 6,)


def test_spec_round_trips_and_bad_input_is_a_clear_error(tmp_path):
    spec = RunSpec(env={"_target_": "sim.tasks.ReachEnv", "horizon": 20}, base="expert:0.2", seed=4,
                   base_kwargs={}, runtime={"name": "ray", "num_actors": 3})
    back = RunSpec.from_json(spec.to_json())
    assert back == spec and isinstance(back.runtime, RayRuntimeConfig) and back.runtime.num_actors == 3
    with pytest.raises(ConfigError, match="residual_scal"):
        RunSpec.from_json(spec.to_json().replace("residual_scale", "residual_scal"))
    with pytest.raises(ConfigError, match="not JSON"):
        RunSpec.from_json("{not json")
    with pytest.raises(ConfigError, match="needs env"):
        RunSpec()
    with pytest.raises(ConfigError, match="reward='oracle'"):
        RunSpec(env="sim/reach", reward="oracle")
    with pytest.raises(ConfigError, match="learner_threads must be >= 1"):
        RunSpec(env="sim/reach", runtime={"name": "local", "learner_threads": 0})
    with pytest.raises(ConfigError, match="explore_corr"):
        RunSpec.from_json(spec.to_json().replace('"explore_corr": 0.0', '"explore_corr": 1.5'))
    path = tmp_path / "bad.yaml"
    path.write_text("env: sim/reach\nlearner: {publish_evry: 3}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*publish_evry"):
        load_spec(str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="key=value"):
        load_spec("ros2/finetune_panda_sim.yaml", ["learner.out_dir"])


def test_profiles_hold_only_what_they_change():
    from robotlearn.cli.finetune import load_config

    cfg = load_config(["env=sim/reach"])
    assert cfg.rl == ResidualConfig()  # rl=resfit is the dataclass defaults, not a copy of them
    assert cfg.actor == ActorConfig() and cfg.runtime == LocalRuntimeConfig()
    assert dataclasses.replace(cfg.learner, out_dir="x", max_env_steps=0) == LearnerConfig(out_dir="x")
    cpu = load_config(["env=sim/reach", "rl=cpu"]).rl
    changed = {k for k, v in dataclasses.asdict(cpu).items() if v != getattr(ResidualConfig(), k)}
    assert changed == {"num_critics", "warmup_env_steps", "residual_scale",
                       "residual_penalty", "explore_corr"}
    assert np.isclose(cpu.residual_scale, 0.3)


def test_every_command_lists_its_keys_and_defaults_with_help(capsys):
    from robotlearn.cli.main import COMMANDS, main

    for cmd in ("finetune", "collect", "train-bc", "eval", "train-reward", "pipeline"):
        assert cmd in COMMANDS
        assert main([cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert "keys (configs/" in out and "cannot list" not in out, (cmd, out[-300:])
    main(["finetune", "--help", "rl=cpu"])  # overrides show in the listing
    assert "residual_scale: 0.3" in capsys.readouterr().out
