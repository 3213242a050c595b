"""Offscreen MuJoCo renderers that are closed before the GL backend shuts down.

mujoco's EGL backend terminates its display in an atexit hook, registered when the first GL context
is made. A `mujoco.Renderer` still alive after that hook (held by a node until the end, or garbage in
a reference cycle until the interpreter's last collection) frees its context against the terminated
display and prints an EGLError traceback from `Renderer.__del__` / `GLContext.__del__` at every exit.
`offscreen_renderer` makes renderers that are closed in the right order (`close_at_exit` takes one
another library made): the atexit hook here is registered once a renderer exists, so after mujoco's,
and runs before it, closing every renderer still open.
"""
from __future__ import annotations

import atexit
import weakref

import mujoco

_OPEN: "weakref.WeakSet[mujoco.Renderer]" = weakref.WeakSet()
_hooked = False


def offscreen_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """A `mujoco.Renderer` that is closed at exit before the GL backend is (closing it earlier is fine)."""
    return close_at_exit(mujoco.Renderer(model, height, width))


def close_at_exit(renderer: mujoco.Renderer) -> mujoco.Renderer:
    """Close `renderer` (an existing one, e.g. a simulator's own) at exit, before the GL backend shuts down."""
    global _hooked
    if not _hooked:  # the renderer has made a GL context, so the backend's hook is registered: this one runs first
        atexit.register(close_renderers)
        _hooked = True
    _OPEN.add(renderer)
    return renderer


def close_renderers() -> None:
    """Close every renderer `offscreen_renderer` made that is still open."""
    for renderer in list(_OPEN):
        renderer.close()
