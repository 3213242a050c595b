"""Test-wide environment: offscreen EGL, ROS 2 logs and Ray temp files kept out of $HOME."""
import os
import tempfile

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
_tmp = tempfile.mkdtemp(prefix="robotlearn-test-")
os.environ.setdefault("ROS_LOG_DIR", os.path.join(_tmp, "ros_logs"))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("OMP_NUM_THREADS", "1")


# The suite hosts Ray drivers (init and shutdown several times in this process), rclpy executors and EGL renderers.
# Their native threads can outlive their Python owners, and CPython's finalization (module and object teardown after
# the atexit hooks) then runs their destructors in no fixed order: the suite once passed in full and the process
# died with SIGSEGV after the summary (ray-project/ray#31145 describes the Ray case). So once pytest has reported,
# the atexit hooks run as at any exit (ROS nodes, renderers, Ray and multiprocessing children are closed) and the
# process ends there with pytest's exit status, without the finalization.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if not _EXIT_STATUS:
        return
    import atexit
    import sys

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[-1])
