"""MuJoCo tasks (Panda arm, primitive geometry) and adapters for other simulators.

Offscreen rendering defaults to EGL (headless); set MUJOCO_GL before import to override.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"] if os.environ["MUJOCO_GL"] != "glfw" else "")
if not os.environ["PYOPENGL_PLATFORM"]:
    del os.environ["PYOPENGL_PLATFORM"]
