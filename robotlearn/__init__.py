"""robotlearn: demonstrations -> base policy -> residual off-policy RL, on MuJoCo or ROS 2 robots."""
import os

# MuJoCo reads MUJOCO_GL once, at its first import: default to headless EGL before anything imports it.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
