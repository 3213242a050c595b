"""Progress bars for every command: redrawn in place on a terminal, a plain line every few seconds elsewhere.

The `progress` setting of the commands (`progress=auto|bar|lines|off`; `true` means auto, `false` off):
- `bar`: tqdm, redrawn in place with carriage returns (for a terminal);
- `lines`: one whole line at most every `LINE_EVERY_S` seconds and a last one when it ends, no carriage
  returns (for CI logs, files and pipes, which would otherwise keep every redraw);
- `auto`: `bar` when the output is a terminal, else `lines`;
- `off`: nothing.
`progress_bar(...)` makes the bar for a mode; both kinds take the tqdm calls the commands use
(iteration, `update`, `n`, `set_postfix`, `refresh`, `write`, `close`).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, TextIO

from robotlearn.config import ConfigError

PROGRESS_MODES = ("auto", "bar", "lines", "off")
LINE_EVERY_S = 10.0  # lines mode: at most one line per this many seconds, plus the last one
_BOOLS = {"true": "auto", "false": "off"}


def progress_mode(value: Any) -> str:
    """A `progress` setting as one of PROGRESS_MODES; a bool (or "true"/"false") means auto/off."""
    v = str(value).strip().lower()
    v = _BOOLS.get(v, v)
    if v not in PROGRESS_MODES:
        raise ConfigError(f"progress={value!r}: must be one of {', '.join(PROGRESS_MODES)} (or true/false)")
    return v


def progress_bar(iterable: Iterable | None = None, *, mode: Any = "auto", total: float | None = None,
                 initial: int = 0, desc: str = "", unit: str = "it", leave: bool = True, file: TextIO | None = None):
    """A progress bar for `mode` (see the module doc) on `file` (default stderr). `leave=False` clears a
    finished bar from a terminal; in lines mode the last line always stays."""
    mode, file = progress_mode(mode), file or sys.stderr
    if mode == "auto":
        isatty = getattr(file, "isatty", None)
        mode = "bar" if callable(isatty) and isatty() else "lines"
    if mode == "lines":
        return LineProgress(iterable, total=total, initial=initial, desc=desc, unit=unit, file=file)
    from tqdm import tqdm

    return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=file,
                disable=mode == "off")


class LineProgress:
    """Progress as plain lines, `desc: n/total unit (pct%) elapsed, rate, eta, postfix`, at most one per
    `every_s` seconds and one when closed (or when an iteration ends)."""

    def __init__(self, iterable: Iterable | None = None, total: float | None = None, initial: int = 0,
                 desc: str = "", unit: str = "it", file: TextIO | None = None, every_s: float = LINE_EVERY_S) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.n, self.desc, self.unit = iterable, total, initial, desc, unit
        self.file, self.every_s = file or sys.stderr, every_s
        self.postfix = ""
        self._n0 = initial
        self._t0 = self._last = time.monotonic()
        self._printed: tuple[float, str] | None = None  # (n, postfix) of the last line, not to repeat it
        self._closed = False

    def __iter__(self):
        try:
            for x in self.iterable:  # type: ignore[union-attr]
                yield x
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        self.refresh(force=False)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in items.items())

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self._print(now)

    def write(self, s: str, file: TextIO | None = None) -> None:
        """A message between progress lines (stdout by default, as tqdm.write)."""
        out = file or sys.stdout
        out.write(s + "\n")
        out.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._printed != (self.n, self.postfix):
            self._print(time.monotonic())

    def line(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self._t0
        rate = (self.n - self._n0) / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.n:g}/{self.total:g} {self.unit} ({100.0 * self.n / self.total:.0f}%)" if self.total
                 else f"{self.n:g} {self.unit}", f"{_clock(elapsed)} elapsed", f"{rate:.3g} {self.unit}/s"]
        if self.total and 0 < rate and self.n < self.total:
            parts.append(f"eta {_clock((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)

    def _print(self, now: float) -> None:
        self._printed = (self.n, self.postfix)
        self.write(self.line(now), self.file)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
