"""Envs by name: `make_env("sim/lift")`, `make_env("dmc/cartpole-swingup")`, `make_env("ros2/panda")`.

A name is a YAML file `env/<name>.yaml` in a config directory holding a hydra `_target_`
(an env class from robotlearn, sim, hw_drivers or an allowed plugin package) and its
keyword arguments; the same files are the hydra
`env=` group of every CLI command. Code can also `register_env(name, factory)`.

Config directories (`config_dirs`), first match wins: the user's own (ROBOTLEARN_CONFIG_DIR, or
`robotlearn --config-dir DIR`), then the configs robotlearn ships (`config_root`: package data of
an installed robotlearn, found through importlib.resources; `configs/` in a checkout). Both have
the same layout: env/<group>/<name>.yaml, ros2/<robot>.yaml, <command>.yaml, policy/, rl/, runtime/.
"""
from __future__ import annotations

import importlib.resources
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf

from robotlearn.config import ConfigError
from robotlearn.envs.interface import EnvDescription, RobotEnv

_FACTORIES: dict[str, Callable[..., RobotEnv]] = {}


USER_CONFIG_ENV = "ROBOTLEARN_CONFIG_DIR"


def config_root() -> Path:
    """The configs robotlearn ships: `robotlearn/configs/` of an installed package (setup.py copies them
    there), else, in a checkout (an editable install), the repository's `configs/`."""
    shipped = Path(str(importlib.resources.files("robotlearn") / "configs"))
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[2] / "configs"


def user_config_dir() -> Path | None:
    """The user's config directory (ROBOTLEARN_CONFIG_DIR), searched before the shipped configs; None if unset."""
    value = os.environ.get(USER_CONFIG_ENV)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"{USER_CONFIG_ENV}={value!r} is not a directory")
    return path


def config_dirs() -> list[Path]:
    """Where configs are looked up, in order: the user's directory (if set), then the shipped configs."""
    user = user_config_dir()
    return ([user] if user else []) + [config_root()]


def find_config(path: str | Path) -> Path | None:
    """The first config directory's `path` that exists (e.g. "ros2/panda_sim.yaml"; a leading "configs/",
    as a checkout spells it, is dropped), or None. An absolute path is itself or None."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    if p.parts[:1] == ("configs",) and len(p.parts) > 1:
        p = Path(*p.parts[1:])
    return next((d / p for d in config_dirs() if (d / p).exists()), None)


def register_env(name: str, factory: Callable[..., RobotEnv]) -> None:
    from robotlearn.envs.gymnasium_ids import register_gymnasium_envs

    _FACTORIES[name] = factory
    register_gymnasium_envs([name])  # gymnasium.make("robotlearn/<group>-<name>-v0") builds it too


def list_envs() -> list[str]:
    names = {str(p.relative_to(d / "env").with_suffix("")) for d in config_dirs() for p in (d / "env").rglob("*.yaml")}
    return sorted(names | set(_FACTORIES))


class UnknownEnvError(ConfigError, KeyError):
    """No env of that name (a ConfigError for the CLI's one-line message; a KeyError for lookups)."""

    __str__ = BaseException.__str__


def env_config(name: str) -> dict[str, Any]:
    path = find_config(f"env/{name}.yaml") if isinstance(name, str) else None
    if path is None and isinstance(name, str) and "/" in name:  # e.g. ros2/<a robot of the user's>: its group's
        path = find_config(f"env/{name.split('/')[0]}/custom.yaml")  # generic entry, which needs its params
    if path is None:
        where = " or ".join(str(d / "env") for d in config_dirs())
        raise UnknownEnvError(f"unknown env {name!r}: no {name}.yaml under {where}; known envs: {', '.join(list_envs())}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


# Env classes are looked up only inside these packages: an env config read from a dataset or a
# checkpoint is data, so a `_target_` there cannot name `pathlib.Path.write_text` or `os.system`.
# A plugin adds its own package with `allow_env_package("my_robots")`.
_ALLOWED_PACKAGES = {"robotlearn", "sim", "hw_drivers"}


def allow_env_package(package: str) -> None:
    """Let `_target_` name env classes in `package` (a plugin's own envs)."""
    _ALLOWED_PACKAGES.add(package.split(".")[0])


def env_class(target: Any) -> Callable[..., RobotEnv]:
    """The env class (or factory) a `_target_` names, from an allowed package only; never a call."""
    import importlib

    if not isinstance(target, str) or not target or target.split(".")[0] not in _ALLOWED_PACKAGES:
        raise ConfigError(f"env _target_ {target!r} is not an env of an allowed package "
                          f"({', '.join(sorted(_ALLOWED_PACKAGES))}); env configs are data, not code to run")
    module, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"env _target_ {target!r}: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, RobotEnv)):
        raise ConfigError(f"env _target_ {target!r} is not a RobotEnv class")
    return obj


def _resolve(name: str | dict, overrides: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(name) if isinstance(name, dict) else env_config(name)
    cfg.pop("name", None)
    special = sorted(k for k in overrides if str(k).startswith("_"))
    if special:  # kwargs only: the target comes from the named config, never from the overrides
        raise ConfigError(f"env {name if isinstance(name, str) else cfg.get('_target_')!r}: "
                          f"overrides may not set {special}")
    cfg.update(overrides)
    check_required(cfg, f"env {name if isinstance(name, str) else cfg.get('_target_')!r}")
    return cfg


def check_required(cfg: dict[str, Any], who: str) -> None:
    """`???` in an env YAML is a value the user must give (configs/env/ros2/custom.yaml's params)."""
    required = sorted(k for k, v in cfg.items() if v == "???")
    if required:
        raise ConfigError(f"{who} needs " + ", ".join(f"env.{k}=<...>" for k in required)
                          + (" (a ROS 2 robot: env.params=<robot params YAML>)" if "params" in required else ""))


def make_env(name: str | dict, **overrides: Any) -> RobotEnv:
    """Build an env from its registered name (or a config dict with `_target_`).

    The config's `_target_` names the env class (from an allowed package); every other key is passed
    as a keyword argument, as plain data: nothing nested in it is instantiated.
    """
    if isinstance(name, str) and name in _FACTORIES:
        return _FACTORIES[name](**overrides)
    cfg = _resolve(name, overrides)
    target = cfg.pop("_target_", None)
    special = sorted(k for k in cfg if str(k).startswith("_"))
    if special:
        raise ConfigError(f"env {target!r}: unsupported config keys {special} (an env config is _target_ + kwargs)")
    cls = env_class(target)
    try:
        env = cls(**cfg)
    except TypeError as e:  # a keyword the env does not take: say which env, in one line
        if "argument" in str(e):
            raise ConfigError(f"env {target}: {e}") from e
        raise
    except ConfigError:
        raise
    except ValueError as e:  # a bad value for the env
        raise ConfigError(f"env {target}: {e}") from e
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
    if key in _FACTORIES:
        env = make_env(key, **json.loads(overrides_json))
    else:
        cfg = json.loads(key)
        target = env_class(cfg.get("_target_"))
        describe = getattr(target, "describe", None)
        if callable(describe):
            return describe(**{k: v for k, v in cfg.items() if k != "_target_"})
        env = make_env(cfg)
    try:
        return env.description
    finally:
        env.close()
