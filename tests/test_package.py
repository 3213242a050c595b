"""robotlearn as an installed package: configs found through the package (importlib.resources) with the
user's config directory searched first, console scripts that work from any directory, and a real wheel
installed non-editable into a fresh venv."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hw_drivers.config import load_params
from hw_drivers.ros2_env import resolve_params
from robotlearn.cli.main import main as cli_main
from robotlearn.config import ConfigError, compose, read_yaml
from robotlearn.envs import config_dirs, config_root, find_config, list_envs, make_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A user's config directory: a new env, a changed command default, their own robot description."""
    d = tmp_path / "my_configs"
    (d / "env" / "mine").mkdir(parents=True)
    (d / "env" / "mine" / "short_reach.yaml").write_text("_target_: sim.tasks.ReachEnv\nhorizon: 4\n")
    (d / "env" / "sim").mkdir()
    (d / "env" / "sim" / "reach.yaml").write_text("_target_: sim.tasks.ReachEnv\nhorizon: 6\n")  # shadows the shipped
    shutil.copy(ROOT / "configs" / "expert.yaml", d / "expert.yaml")
    (d / "expert.yaml").write_text((d / "expert.yaml").read_text().replace("episodes: 50", "episodes: 3"))
    (d / "ros2").mkdir()
    robot = (ROOT / "configs" / "ros2" / "panda_sim.yaml").read_text()
    (d / "ros2" / "panda_sim.yaml").write_text(robot.replace("control_hz: 20.0", "control_hz: 10.0"))
    monkeypatch.setenv("ROBOTLEARN_CONFIG_DIR", str(d))
    return d


def test_user_config_dir_is_searched_first(user_dir):
    assert config_dirs() == [user_dir.resolve(), config_root()]
    assert "mine/short_reach" in list_envs() and "sim/lift" in list_envs()
    assert make_env("mine/short_reach").horizon == 4 and make_env("sim/reach").horizon == 6
    assert compose("expert", []).episodes == 3  # the user's command YAML
    assert compose("collect", ["env=mine/short_reach"]).env.horizon == 4  # hydra groups see the user's envs
    assert compose("collect", ["env=sim/lift"]).env._target_ == "sim.tasks.LiftEnv"  # and still the shipped ones
    assert resolve_params("ros2/panda_sim.yaml") == user_dir.resolve() / "ros2" / "panda_sim.yaml"
    assert load_params("ros2/panda_sim.yaml").robot.control_hz == 10.0


def test_configs_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("ROBOTLEARN_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    shipped = config_root() / "ros2" / "finetune_panda_sim.yaml"
    assert find_config("configs/ros2/finetune_panda_sim.yaml") == shipped == find_config("ros2/finetune_panda_sim.yaml")
    assert read_yaml("configs/ros2/finetune_panda_sim.yaml").env == "ros2/panda_sim"  # a checkout's spelling
    assert load_params("configs/ros2/panda_sim.yaml").robot.name == "panda"
    assert find_config("ros2/no_such_robot.yaml") is None


def test_a_bad_user_config_dir_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROBOTLEARN_CONFIG_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="ROBOTLEARN_CONFIG_DIR=.*missing.* is not a directory"):
        compose("expert", [])
    assert cli_main(["--config-dir", str(tmp_path / "nope"), "envs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robotlearn: error: ROBOTLEARN_CONFIG_DIR=") and "\n" not in err


def test_installed_wheel_works_from_any_directory(tmp_path):
    """`pip wheel` of the project, installed with --no-deps into a fresh venv that sees the project's
    dependencies (a .pth to its site-packages), then the console scripts run from an empty directory."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("robotlearn", "sim", "hw_drivers", "configs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)  # noqa: E731
    r = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
            "-w", str(tmp_path / "dist"), str(src))
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("robotlearn-*.whl")

    venv = tmp_path / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert run(str(base), "-m", "venv", "--without-pip", str(venv)).returncode == 0
    py = venv / "bin" / "python"
    site = run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "robotlearn_deps.pth").write_text(f"import site; site.addsitedir({deps!r})\n")
    r = run(str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel))
    assert r.returncode == 0, r.stderr

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ROBOTLEARN_CONFIG_DIR"}  # (ROS libraries: inherited)
    bin_ = venv / "bin"
    where = run(str(py), "-c", "import robotlearn, robotlearn.envs as e; print(robotlearn.__file__, e.config_root())",
                cwd=cwd, env=env)
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [f"{site}/robotlearn/__init__.py", f"{site}/robotlearn/configs"]  # the install
    envs = run(str(bin_ / "robotlearn"), "envs", cwd=cwd, env=env)
    assert envs.returncode == 0 and {"sim/reach", "dmc/cartpole-swingup", "ros2/panda_sim"} <= set(envs.stdout.split())
    expert = run(str(bin_ / "robotlearn"), "expert", "env=sim/reach", "episodes=2", "noise=[0.0]", cwd=cwd, env=env)
    assert expert.returncode == 0 and "sim/reach" in expert.stdout, expert.stderr
    dry = run(str(bin_ / "robotlearn-ros2-dry-run"), "--check", "--steps", "1500", cwd=cwd, env=env)
    assert dry.returncode == 0, dry.stderr
    check = json.loads(dry.stdout.strip().splitlines()[-1])
    assert check["params"] == f"{site}/robotlearn/configs/ros2/finetune_panda_sim.yaml" and check["robot"] == "panda"
    assert check["robot_params"] == f"{site}/robotlearn/configs/ros2/panda_sim.yaml"
    assert not list(cwd.iterdir())  # nothing written where it ran
    mine = tmp_path / "mine"
    (mine / "env" / "lab").mkdir(parents=True)
    (mine / "env" / "lab" / "reach.yaml").write_text("_target_: sim.tasks.ReachEnv\nhorizon: 5\n")
    listed = run(str(bin_ / "robotlearn"), "--config-dir", str(mine), "envs", cwd=cwd, env=env)
    assert listed.returncode == 0 and "lab/reach" in listed.stdout.split() and "sim/reach" in listed.stdout.split()
