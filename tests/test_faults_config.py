"""Fault suite, configuration: every out-of-range value and malformed input the hardening issue found is
refused where the config is made, with one line `robotlearn: error: <key>: <why>` and no traceback."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

FINETUNE_CASES = [
    ("rl.residual_scale=-1", "rl.residual_scale must be in (0, inf), got -1"),
    ("rl.residual_scale=0", "rl.residual_scale must be in (0, inf), got 0"),
    ("rl.gamma=1.5", "rl.gamma must be in [0, 1), got 1.5"),
    ("rl.explore_std=-1", "rl.explore_std must be in [0, inf), got -1"),
    ("rl.batch_size=0", "rl.batch_size must be in [1, inf), got 0"),
    ("learner.checkpoint_every=0", "learner.checkpoint_every must be in [1, inf), got 0"),
    ("env_steps=-100", "env_steps must be in "),  # learner.max_env_steps = ${env_steps} fails first
    ("runtime.num_actors=0", "runtime.num_actors must be >= 1, got 0"),
    ("actor.max_env_steps=-5", "actor.max_env_steps must be in [0, inf), got -5"),
]


@pytest.mark.parametrize("override,message", FINETUNE_CASES)
def test_finetune_refuses_out_of_range_values_in_one_line(override, message, tmp_path, capsys):
    from robotlearn.cli import finetune

    with pytest.raises(SystemExit) as e:
        finetune.main(["env=sim/reach", override, f"out={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_train_bc_refuses_non_positive_steps(tmp_path, capsys):
    from robotlearn.cli import train_bc

    with pytest.raises(SystemExit):
        train_bc.main([f"dataset={tmp_path / 'd.zarr'}", "steps=-1", f"out_dir={tmp_path / 'out'}"])
    assert "steps must be in [1, inf), got -1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # no untrained checkpoint


@pytest.fixture(scope="module")
def no_reward_dataset(tmp_path_factory):
    from robotlearn.cli import collect

    path = tmp_path_factory.mktemp("noreward") / "d.zarr"
    assert collect.main(["env=sim/reach", "episodes=1", f"out={path}", "progress=false"]) == 0
    shutil.rmtree(path / "data/reward")
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["schema"].pop("reward")
    (path / "zarr.json").write_text(json.dumps(meta))
    return path


def test_collect_onto_a_dataset_without_reward_is_one_line(no_reward_dataset, capsys):
    from robotlearn.cli import collect

    with pytest.raises(SystemExit):
        collect.main(["env=sim/reach", "episodes=2", f"out={no_reward_dataset}", "progress=false"])
    err = capsys.readouterr().err
    assert "schema differs" in err and "reward" in err and "Traceback" not in err


def test_demos_without_reward_name_what_is_missing(no_reward_dataset, tmp_path):
    from robotlearn.envs import make_env
    from robotlearn.rl.residual import ResidualConfig
    from robotlearn.runtime.learner import Learner, LearnerConfig

    env = make_env("sim/reach")
    try:
        with pytest.raises(ValueError, match=r"lacks data/reward .*demos need state, action and reward"):
            Learner(None, ResidualConfig(num_critics=2, hidden_dim=16), LearnerConfig(out_dir=str(tmp_path / "r"),
                    tensorboard=False), env.env_info, env.observation_space, demos=str(no_reward_dataset))
    finally:
        env.close()


def test_safety_bridge_with_a_workspace_box_but_no_model_is_one_line(tmp_path):
    from hw_drivers import safety_bridge_node
    from hw_drivers.config import read_param_file
    from hw_drivers.processes import REPO

    _, params = read_param_file(REPO / "configs/ros2/panda_real.yaml")
    params["robot"]["limits"]["workspace"].update(low=[0.2, -0.4, 0.0], high=[0.8, 0.4, 0.6], mjcf="", site="")
    p = tmp_path / "robot.yaml"
    p.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit, match="needs robot.limits.workspace.mjcf .* and .site"):
        safety_bridge_node.main(["--params", str(p)])
    params["robot"]["limits"]["workspace"].update(mjcf=str(tmp_path / "missing.xml"), site="tcp")
    p.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit, match="no model file"):
        safety_bridge_node.main(["--params", str(p)])


def test_resume_from_a_checkpoint_without_runtime_yaml_is_refused(tmp_path):
    from robotlearn.envs import make_env
    from robotlearn.rl.residual import ResidualConfig
    from robotlearn.runtime.learner import Learner, LearnerConfig

    env = make_env("sim/reach")
    rl, lc = ResidualConfig(num_critics=2, hidden_dim=16), LearnerConfig(out_dir=str(tmp_path / "r"), tensorboard=False)
    try:
        L = Learner(None, rl, lc, env.env_info, env.observation_space)
        L.checkpoint()
        L.close()
        (tmp_path / "r/checkpoint/runtime.yaml").unlink()
        with pytest.raises(ValueError, match="has no runtime.yaml"):
            Learner(None, rl, lc, env.env_info, env.observation_space)
    finally:
        env.close()


def test_collect_refuses_a_non_positive_teleop_wait(capsys):
    from robotlearn.cli import collect

    with pytest.raises(SystemExit):
        collect.main(["env=sim/reach", "teleop=true", "teleop_wait_s=0", "out=/tmp/never.zarr"])
    assert "teleop_wait_s must be in (0, inf), got 0" in capsys.readouterr().err
