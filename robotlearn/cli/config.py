"""Hydra composition into typed dataclasses.

Every command has a YAML in `configs/<command>.yaml` and a dataclass schema;
`key=value` overrides from the command line are composed by hydra, then
validated against the schema so a typo is a clear error, not a silent default.
"""
from __future__ import annotations

import sys
from dataclasses import is_dataclass
from typing import Any, TypeVar

from omegaconf import OmegaConf

from robotlearn.envs.registry import config_root

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def compose(config_name: str, overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(config_root()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except HydraException as e:
        raise ConfigError(f"configs/{config_name}.yaml with overrides {overrides}: {e}") from e


def to_dataclass(cfg: Any, schema: type[T]) -> T:
    """Validate a DictConfig against a dataclass schema; unknown keys raise."""
    assert is_dataclass(schema)
    base = OmegaConf.structured(schema)  # a structured config rejects unknown keys by itself
    try:
        merged = OmegaConf.merge(base, cfg)
    except Exception as e:  # omegaconf raises several types; all mean "bad config"
        raise ConfigError(f"invalid config for {schema.__name__}: {e}") from e
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def load(config_name: str, overrides: list[str], schema: type[T]) -> T:
    return to_dataclass(compose(config_name, overrides), schema)


def fail(msg: str) -> None:
    print(f"robotlearn: error: {msg}", file=sys.stderr)
    raise SystemExit(2)
