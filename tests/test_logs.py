"""Clean logs: progress=auto|bar|lines|off, no carriage-return floods off a terminal, no robosuite import
warnings, no EGL teardown tracebacks at exit."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from robotlearn.config import ConfigError
from robotlearn.progress import LineProgress, progress_bar, progress_mode

ROOT = Path(__file__).resolve().parents[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_mode_values():
    assert [progress_mode(v) for v in (True, False, "true", "False", "auto", "BAR", "lines", "off")] == \
        ["auto", "off", "auto", "off", "auto", "bar", "lines", "off"]
    with pytest.raises(ConfigError, match="progress='sometimes': must be one of auto, bar, lines, off"):
        progress_mode("sometimes")


def test_lines_mode_prints_whole_lines_only():
    out = io.StringIO()
    bar = LineProgress(range(5), desc="collect sim/lift", unit="ep", file=out, every_s=0.0)
    for _ in bar:
        bar.set_postfix(success="40%", loss=0.12345)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 5  # one per update at every_s=0; the close adds none (nothing new)
    assert lines[-1].startswith("collect sim/lift: 5/5 ep (100%)") and lines[-1].endswith("success=40%, loss=0.123")


def test_lines_mode_rate_limits_and_always_prints_the_end():
    out = io.StringIO()
    bar = progress_bar(total=100, desc="finetune", unit="step", mode="lines", file=out)
    for _ in range(100):
        bar.update(1)  # well under LINE_EVERY_S: no line yet
    assert out.getvalue() == ""
    bar.close()
    assert out.getvalue().splitlines() == [out.getvalue().strip()] and "100/100 step (100%)" in out.getvalue()


def test_auto_is_a_bar_on_a_terminal_and_lines_elsewhere():
    log, tty = io.StringIO(), _Terminal()
    assert isinstance(progress_bar(total=3, file=log), LineProgress)
    bar = progress_bar(range(3), desc="eval", file=tty, mode="auto")
    for _ in bar:
        pass
    assert "\r" in tty.getvalue()  # tqdm redraws in place on a terminal
    off = io.StringIO()
    for _ in progress_bar(range(3), mode="off", file=off):
        pass
    assert off.getvalue() == ""


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "egl"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_command_progress_in_a_log():
    r = _run(["-m", "robotlearn", "expert", "env=sim/reach", "episodes=2", "noise=[0.0]"])
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "sim/reach noise=0.0: 2/2 ep (100%)" in r.stderr  # stderr is a pipe here
    quiet = _run(["-m", "robotlearn", "expert", "env=sim/reach", "episodes=2", "noise=[0.0]", "progress=false"])
    assert quiet.returncode == 0 and "noise=0.0: 2/2" not in quiet.stderr
    bad = _run(["-m", "robotlearn", "expert", "env=sim/reach", "progress=sometimes"])
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "progress='sometimes'" in bad.stderr


def test_no_third_party_noise_or_egl_teardown_tracebacks():
    """Renderers still alive at exit (even in reference cycles, gym-hil's own included) and robosuite's import."""
    code = textwrap.dedent("""
        from robotlearn.envs import make_env

        class Holder:  # a reference cycle: collected only at interpreter shutdown, after atexit
            pass

        h = Holder()
        h.self = h
        h.lift = make_env("sim/lift", cameras=["front"], image_size=32)
        h.lift.reset(seed=0)
        h.hil = make_env("gym-hil/PandaPickCubeBase")
        h.suite = make_env("robosuite/Lift")
        h.suite.reset(seed=0)
        del h
        print("done")
    """)
    r = _run(["-c", code])
    assert r.returncode == 0 and r.stdout.strip() == "done", r.stderr
    for noise in ("EGLError", "Traceback", "Exception ignored", "robosuite WARNING", "robosuite INFO"):
        assert noise not in r.stderr, r.stderr
