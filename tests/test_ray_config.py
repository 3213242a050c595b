"""configs/runtime/ray.yaml <-> RayRuntimeConfig, and the launch() entry's input checks (no Ray started)."""
import types

import pytest

pytest.importorskip("ray")

from omegaconf import OmegaConf  # noqa: E402

from robotlearn.cli.config import ConfigError  # noqa: E402
from robotlearn.envs.registry import config_root  # noqa: E402
from robotlearn.rl.residual import ResidualConfig  # noqa: E402
from robotlearn.runtime.actor import ActorConfig  # noqa: E402
from robotlearn.runtime.learner import LearnerConfig  # noqa: E402
from robotlearn.runtime.ray_runtime import RayRun, RayRuntimeConfig, launch, ray_runtime_config  # noqa: E402


def test_yaml_matches_schema_and_overrides_apply():
    cfg = OmegaConf.load(config_root() / "runtime" / "ray.yaml")
    rt = ray_runtime_config(cfg)
    assert rt == RayRuntimeConfig()  # the YAML documents exactly the dataclass defaults
    rt = ray_runtime_config(OmegaConf.merge(cfg, OmegaConf.from_dotlist(["num_actors=4", "address=auto"])))
    assert rt.num_actors == 4 and rt.address == "auto"


def test_unknown_or_mistyped_keys_are_named():
    cfg = OmegaConf.load(config_root() / "runtime" / "ray.yaml")
    with pytest.raises(ConfigError, match="num_actor"):
        ray_runtime_config(OmegaConf.merge(cfg, {"num_actor": 3}))
    with pytest.raises(ConfigError, match="num_actors"):
        ray_runtime_config(OmegaConf.merge(cfg, {"num_actors": "many"}))


def test_launch_rejects_incomplete_config_and_zero_actors(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        launch(types.SimpleNamespace(env="sim/reach", base="zero"))
    run = RayRun("sim/reach", "zero", ResidualConfig(), LearnerConfig(out_dir=str(tmp_path)), ActorConfig(),
                 RayRuntimeConfig(num_actors=0))
    with pytest.raises(ValueError, match="num_actors"):
        run.start()
