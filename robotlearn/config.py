"""Typed configs from YAML: hydra compose (or one YAML file) + `key=value` overrides -> a dataclass.

One loader for every entry point (the CLI commands, the ROS 2 nodes, a run spec that
crossed a process boundary as JSON). The dataclass is the only copy of the defaults;
a YAML file holds only what a profile changes. Unknown keys and wrong types are a
`ConfigError` naming the key, never a silent default.
"""
from __future__ import annotations

import functools
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf


T = TypeVar("T")


class ConfigError(ValueError):
    pass


def check_ranges(obj: Any, where: str, **intervals: str) -> None:
    """Range checks where a config is made: `check_ranges(cfg, "rl", gamma="[0, 1)", batch_size="[1, inf)")`.
    Intervals in the usual notation ([ ] closed, ( ) open, inf allowed); a value outside is a ConfigError
    naming `<where>.<field>`, the interval and the value."""
    import math

    for name, interval in intervals.items():
        lo_b, rest = interval[0], interval[1:-1]
        hi_b = interval[-1]
        lo, hi = (float(x) for x in rest.split(","))
        v = getattr(obj, name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
        ok = ok and (v >= lo if lo_b == "[" else v > lo) and (v <= hi if hi_b == "]" else v < hi)
        if not ok:
            raise ConfigError(f"{where + '.' if where else ''}{name} must be in {interval}, got {v!r}")


def register_schema(name: str, node: type, group: str | None = None) -> None:
    """Make a dataclass usable in a defaults list (`- <name>`), so hydra composes onto its fields:
    command-line overrides need no `+`, and an unknown key fails at compose time."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=name, node=node, group=group)


def compose(config_name: str, overrides: list[str]) -> Any:
    """`<config_name>.yaml` composed by hydra (groups: env/, rl/, runtime/, ...) with CLI overrides, from the
    config directories in order (the user's first, then the shipped ones: robotlearn.envs.config_dirs)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.plugins import Plugins
    from hydra.errors import HydraException

    from robotlearn.envs.registry import config_root, user_config_dir  # here: the registry itself uses ConfigError

    user_config_dir()  # a bad ROBOTLEARN_CONFIG_DIR fails here, in one line
    Plugins.instance().register(_user_config_search_path_plugin())  # once: the same class each call
    try:
        with initialize_config_dir(config_dir=str(config_root()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except HydraException as e:
        raise ConfigError(f"configs/{config_name}.yaml with overrides {overrides}: {e}") from e


@functools.lru_cache(maxsize=1)
def _user_config_search_path_plugin():
    from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class UserConfigDir(SearchPathPlugin):
        """Puts the user's config directory before the shipped configs in hydra's search path (first match wins)."""

        def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
            from robotlearn.envs.registry import user_config_dir

            user = user_config_dir()
            if user is not None:
                search_path.prepend("robotlearn-user", f"file://{user}", anchor=SearchPathQuery(provider="main"))

    return UserConfigDir


def read_yaml(path: str | Path) -> Any:
    """One YAML config file (no hydra groups); a relative path not found here is looked up in the config
    directories (`ros2/finetune_panda_sim.yaml`, or `configs/ros2/...` from any working directory)."""
    from robotlearn.envs.registry import find_config

    p = Path(path)
    if not p.is_file() and not p.is_absolute():
        p = find_config(p) or p
    if not p.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        cfg = OmegaConf.load(p)
    except Exception as e:  # omegaconf/yaml raise several types; all mean "this file is not a config"
        raise ConfigError(f"{p}: not a YAML config ({e})") from e
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{p}: a config file must hold a mapping, got a list")
    return cfg


def apply_overrides(cfg: Any, overrides: list[str], where: str = "") -> Any:
    """`key.sub=value` overrides (values parsed as YAML), the same syntax as on the hydra command line."""
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must be key=value, got {bad}")
    try:
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except Exception as e:  # omegaconf raises several types; all mean "bad override"
        raise ConfigError(f"{where or 'config'} with overrides {list(overrides)}: {e}") from e


def to_dataclass(cfg: Any, schema: type[T], where: str = "") -> T:
    """Validate a DictConfig / dict against a dataclass schema; unknown keys raise."""
    assert is_dataclass(schema)
    base = OmegaConf.structured(schema)  # a structured config rejects unknown keys by itself
    try:
        merged = OmegaConf.merge(base, cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigError:
        raise
    except Exception as e:  # omegaconf raises several types; all mean "bad config"
        from omegaconf.errors import MissingMandatoryValue

        if isinstance(e, MissingMandatoryValue):  # `???` in a YAML: a value the user must give
            key = getattr(e, "full_key", "") or str(e)
            hint = " (a ROS 2 robot: env.params=<robot params YAML>)" if key == "env.params" else ""
            raise ConfigError(f"{where + ': ' if where else ''}{key} is required: set {key}=<...>{hint}") from None
        raise ConfigError(f"invalid config for {schema.__name__}{' in ' + where if where else ''}: {e}") from e
