"""Hydra composition into typed dataclasses for the CLI commands (the loader is `robotlearn.config`).

Every command has a YAML in `configs/<command>.yaml` and a dataclass schema;
`key=value` overrides from the command line are composed by hydra, then
validated against the schema so a typo is a clear error, not a silent default.
"""
from __future__ import annotations

import sys
from typing import TypeVar

from robotlearn.config import ConfigError, compose, to_dataclass

T = TypeVar("T")
__all__ = ["ConfigError", "compose", "to_dataclass", "load", "fail"]


def load(config_name: str, overrides: list[str], schema: type[T]) -> T:
    return to_dataclass(compose(config_name, overrides), schema)


def fail(msg: str) -> None:
    print(f"robotlearn: error: {msg}", file=sys.stderr)
    raise SystemExit(2)
