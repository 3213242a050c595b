"""The ROS 2 package metadata and launch files agree with the console scripts and configs.

`ros2 launch` is not installable here, so this checks statically what it would resolve:
every executable a launch file starts exists as a console script (pyproject and the ament
setup.py) pointing at an importable `main`, and every default parameter file exists.
"""
import ast
import importlib
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hw_drivers.config import load_params, ros2_config_path
from robotlearn.runtime.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))


def launch_calls(path: Path):
    tree = ast.parse(path.read_text())
    execs, configs = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if fn == "Node":
                kw = {k.arg: k.value for k in node.keywords}
                assert ast.literal_eval(kw["package"]) == "robotlearn"
                execs.append(ast.literal_eval(kw["executable"]))
            if fn == "config":
                configs.append(ast.literal_eval(node.args[0]))
    assert any(f.name == "generate_launch_description" for f in tree.body if isinstance(f, ast.FunctionDef))
    return execs, configs


def setup_entry_points() -> dict[str, str]:
    text = (LAUNCH / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.:]+)"', text))


def test_package_metadata():
    root = ET.parse(LAUNCH / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "robotlearn"
    assert root.find("export/build_type").text == "ament_python"
    assert (LAUNCH / "resource" / "robotlearn").exists()
    assert "install_scripts=$base/lib/robotlearn" in (LAUNCH / "setup.cfg").read_text()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_executables_and_params_exist(path):
    execs, configs = launch_calls(path)
    assert execs
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    ament = setup_entry_points()
    for exe in execs:
        assert exe in ament, f"{path.name}: {exe} not an entry point in launch/setup.py"
        if exe in scripts:  # console scripts of the pip install must start the same function
            assert scripts[exe] == ament[exe], f"{path.name}: {exe} differs between pyproject and launch/setup.py"
        module, fn = ament[exe].split(":")
        assert callable(getattr(importlib.import_module(module), fn))
    for name in configs:
        p = ros2_config_path(name)
        (load_spec if name.startswith("finetune") else load_params)(p)


def test_all_ament_entry_points_import():
    for name, target in setup_entry_points().items():
        module, fn = target.split(":")
        assert callable(getattr(importlib.import_module(module), fn)), name
