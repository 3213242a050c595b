"""Envs by name: `make_env("sim/lift")`, `make_env("dmc/cartpole-swingup")`, `make_env("ros2/panda")`.

A name is a YAML file under `configs/env/<name>.yaml` holding a hydra `_target_`
(the class or factory) and its keyword arguments; the same files are the hydra
`env=` group of every CLI command. Code can also `register_env(name, factory)`.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf

from robotlearn.envs.interface import EnvDescription, RobotEnv

_FACTORIES: dict[str, Callable[..., RobotEnv]] = {}


def config_root() -> Path:
    """The `configs/` folder (override with ROBOTLEARN_CONFIG_DIR)."""
    env = os.environ.get("ROBOTLEARN_CONFIG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "configs"


def register_env(name: str, factory: Callable[..., RobotEnv]) -> None:
    from robotlearn.envs.gymnasium_ids import register_gymnasium_envs

    _FACTORIES[name] = factory
    register_gymnasium_envs([name])  # gymnasium.make("robotlearn/<group>-<name>-v0") builds it too


def list_envs() -> list[str]:
    root = config_root() / "env"
    names = {str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml")}
    return sorted(names | set(_FACTORIES))


def env_config(name: str) -> dict[str, Any]:
    path = config_root() / "env" / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"unknown env {name!r}: no {path}; known envs: {', '.join(list_envs())}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def _resolve(name: str | dict, overrides: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(name) if isinstance(name, dict) else env_config(name)
    cfg.pop("name", None)
    cfg.update(overrides)
    return cfg


def make_env(name: str | dict, **overrides: Any) -> RobotEnv:
    """Build an env from its registered name (or a config dict with `_target_`)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if isinstance(name, str) and name in _FACTORIES:
        return _FACTORIES[name](**overrides)
    cfg = _resolve(name, overrides)
    try:
        env = instantiate(cfg, _convert_="all")
    except InstantiationException as e:  # a bad value or keyword for the env: say which, without hydra's wrapping
        if isinstance(e.__cause__, (ValueError, TypeError)):
            raise ValueError(f"env {cfg.get('_target_')}: {e.__cause__}") from e.__cause__
        raise
    if not isinstance(env, RobotEnv):
        raise TypeError(f"env {name!r} built {type(env).__name__}, which is not a robotlearn RobotEnv")
    return env


def describe_env(name: str | dict, **overrides: Any) -> EnvDescription:
    """An env's facts and spaces. A backend with a `describe(**kwargs)` classmethod (a ROS 2 robot:
    its params file says it all) answers without starting; otherwise the env is built once per
    process and closed."""
    key = name if isinstance(name, str) and name in _FACTORIES else json.dumps(_resolve(name, overrides), sort_keys=True)
    return _describe(key, json.dumps(overrides, sort_keys=True) if key == name else "{}")


@lru_cache(maxsize=16)
def _describe(key: str, overrides_json: str) -> EnvDescription:
    from hydra.utils import get_object

    if key in _FACTORIES:
        env = make_env(key, **json.loads(overrides_json))
    else:
        cfg = json.loads(key)
        target = get_object(cfg["_target_"])
        describe = getattr(target, "describe", None)
        if callable(describe):
            return describe(**{k: v for k, v in cfg.items() if k != "_target_"})
        env = make_env(cfg)
    try:
        return env.description
    finally:
        env.close()
