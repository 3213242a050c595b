"""configs/runtime/*.yaml <-> the typed runtime configs, and the Ray entry's input checks (no Ray started)."""
import pytest

pytest.importorskip("ray")

from robotlearn.cli.finetune import load_config  # noqa: E402
from robotlearn.config import ConfigError  # noqa: E402
from robotlearn.runtime.ray_runtime import RayRun, RayRuntimeConfig  # noqa: E402
from robotlearn.runtime.spec import LocalRuntimeConfig, RunSpec, runtime_config  # noqa: E402


def test_yaml_files_pick_the_runtime_and_overrides_apply():
    # the files name the runtime; the dataclasses hold the defaults
    assert load_config(["runtime=ray"]).runtime == RayRuntimeConfig()
    assert load_config([]).runtime == LocalRuntimeConfig()
    rt = load_config(["runtime=ray", "runtime.num_actors=4", "runtime.address=auto"]).runtime
    assert rt == RayRuntimeConfig(num_actors=4, address="auto")
    assert load_config(["runtime.num_actors=3"]).runtime == LocalRuntimeConfig(num_actors=3)


def test_unknown_or_mistyped_keys_are_named():
    with pytest.raises(ConfigError, match="num_actor"):
        load_config(["runtime=ray", "runtime.num_actor=3"])
    with pytest.raises(ConfigError, match="num_actors"):
        load_config(["runtime=ray", "runtime.num_actors=many"])
    with pytest.raises(ConfigError, match="num_actor"):
        runtime_config({"name": "ray", "num_actor": 3})
    with pytest.raises(ConfigError, match="learner_in_process"):  # a local-only key on Ray
        runtime_config({"name": "ray", "learner_in_process": False})
    with pytest.raises(ConfigError, match="unknown runtime 'slurm'"):
        runtime_config({"name": "slurm"})


def test_zero_actors_and_a_spec_for_another_runtime_are_refused():
    with pytest.raises(ConfigError, match="num_actors must be >= 1"):
        RunSpec(env="sim/reach", runtime={"name": "ray", "num_actors": 0})
    with pytest.raises(ConfigError, match="num_actors must be >= 1"):
        RunSpec(env="sim/reach", runtime=RayRuntimeConfig(num_actors=0))
    with pytest.raises(ValueError, match="runtime=ray"):
        RayRun(RunSpec(env="sim/reach"))
