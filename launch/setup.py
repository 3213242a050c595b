"""ament_python package `robotlearn`: launch files, parameter files and node executables.

Build it in a colcon workspace (symlink or copy this launch/ folder into src/), after
`pip install -e <repo>` put the robotlearn / hw_drivers Python packages on the path:
    colcon build --packages-select robotlearn && source install/setup.bash
    ros2 launch robotlearn mujoco_dry_run.launch.py
"""
import os
from glob import glob

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
# data_files sources must be relative to this file: the repository's configs/ros2 one level up
CONFIGS = sorted(os.path.relpath(p, HERE) for p in glob(os.path.join(HERE, "..", "configs", "ros2", "*.yaml")))

setup(
    name="robotlearn",
    version="0.1.0",
    packages=[],  # the Python code comes from the repository's own pip install
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/robotlearn"]),
        ("share/robotlearn", ["package.xml"]),
        ("share/robotlearn/launch", sorted(glob("*.launch.py"))),
        ("share/robotlearn/config/ros2", CONFIGS),
    ],
    zip_safe=True,
    entry_points={
        "console_scripts": [  # the same names as the repository's pyproject [project.scripts]
            "robotlearn-mujoco-robot = hw_drivers.mujoco_robot_node:main",
            "robotlearn-safety-bridge = hw_drivers.safety_bridge_node:main",
            "robotlearn-actor-node = hw_drivers.actor_node:main",
            "robotlearn-learner-node = hw_drivers.learner_node:main",
            "robotlearn-ros2-dry-run = hw_drivers.dry_run:main",
            "robotlearn-keyboard-labels = hw_drivers.keyboard_label_node:main",
        ],
    },
)
