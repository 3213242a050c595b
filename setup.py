"""Ships `configs/` inside the package as `robotlearn/configs/` (found with importlib.resources by
robotlearn.envs.config_root), so an installed robotlearn has its envs, command and robot YAMLs.
Everything else about the package is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's configs/ directly
            return
        dest = Path(self.build_lib) / "robotlearn" / "configs"
        for src in sorted(CONFIGS.rglob("*.yaml")):
            target = dest / src.relative_to(CONFIGS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


setup(cmdclass={"build_py": BuildPyWithConfigs})
