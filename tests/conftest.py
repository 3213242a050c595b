"""Test-wide environment: offscreen EGL, ROS 2 logs and Ray temp files kept out of $HOME."""
import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
_tmp = tempfile.mkdtemp(prefix="robotlearn-test-")
os.environ.setdefault("ROS_LOG_DIR", os.path.join(_tmp, "ros_logs"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("OMP_NUM_THREADS", "1")
