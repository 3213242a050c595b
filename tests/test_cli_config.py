"""The typed config path every command uses: unknown keys and wrong types are errors."""
from dataclasses import dataclass
from typing import Any, Optional

import pytest
from omegaconf import OmegaConf

from robotlearn.cli.config import ConfigError, to_dataclass


@dataclass
class _Schema:
    env: Optional[dict[str, Any]] = None
    episodes: int = 3


def test_free_form_env_dict_is_accepted():
    cfg = to_dataclass(OmegaConf.create({"env": {"_target_": "sim.x.Y", "seed": 1}, "episodes": 5}), _Schema)
    assert cfg.env == {"_target_": "sim.x.Y", "seed": 1} and cfg.episodes == 5


@pytest.mark.parametrize("bad, word", [({"episods": 5}, "episods"), ({"episodes": "many"}, "episodes")])
def test_unknown_key_or_wrong_type_names_the_field(bad, word):
    with pytest.raises(ConfigError, match=word):
        to_dataclass(OmegaConf.create(bad), _Schema)


def test_pipeline_takes_env_name_despite_the_env_config_group():
    from robotlearn.cli.pipeline import parse

    assert parse(["env=sim/reach", "env_steps=100"]).task == "sim/reach"
    assert parse([]).task == "sim/lift"
    with pytest.raises(ConfigError, match="demo_episods"):
        parse(["demo_episods=3"])
