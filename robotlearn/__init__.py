"""robotlearn: demonstrations -> base policy -> residual off-policy RL, on MuJoCo or ROS 2 robots."""
import os

# MuJoCo reads MUJOCO_GL once, at its first import: default to headless EGL before anything imports it.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"

# `gymnasium.make("robotlearn/<group>-<name>-v0", **kwargs)` for every env (robotlearn/envs/gymnasium_ids.py)
from robotlearn.config import ConfigError  # noqa: E402
from robotlearn.envs.gymnasium_ids import register_gymnasium_envs  # noqa: E402

try:
    register_gymnasium_envs()
except ConfigError:  # a bad ROBOTLEARN_CONFIG_DIR: the first command that reads configs reports it in one line
    pass
