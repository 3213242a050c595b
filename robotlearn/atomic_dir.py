"""Replace a whole checkpoint folder at once, so a crash never leaves a mix of old and new files.

Protocol: write everything into `<path>.tmp`; then `path -> <path>.old`, `<path>.tmp -> path`,
delete `<path>.old`. `<path>.old` exists only after `<path>.tmp` was complete, so every crash
point has one consistent answer: `readable_dir` finds it without touching anything (safe while a
writer runs), `recover_dir` (writers only) puts it back in place.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _side(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty folder to write into; on a clean exit it becomes `path` (the old one goes)."""
    path = Path(path)
    recover_dir(path)
    tmp, old = _side(path, ".tmp"), _side(path, ".old")
    shutil.rmtree(tmp, ignore_errors=True)  # a save that crashed while writing
    tmp.mkdir(parents=True)
    yield tmp
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def readable_dir(path: str | Path) -> Path:
    """The folder holding the latest complete copy of `path`, even mid-swap (read-only)."""
    path = Path(path)
    tmp, old = _side(path, ".tmp"), _side(path, ".old")
    if path.exists() or not old.exists():
        return path
    return tmp if tmp.exists() else old


def recover_dir(path: str | Path) -> Path:
    """Finish or roll back a swap that a crash interrupted; returns `path`."""
    path = Path(path)
    old = _side(path, ".old")
    if old.exists():
        if not path.exists():  # crashed between the two renames: .tmp is complete
            readable_dir(path).rename(path)
        shutil.rmtree(old, ignore_errors=True)
    return path
