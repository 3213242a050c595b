"""Camera frames <-> video files with PyAV (LeRobot stores cameras as MP4: AV1 by default, H.264 often).

`decode_frames` picks, for each wanted timestamp, the decoded frame nearest to it and fails
when none lies within half a frame period (a dropped or shifted frame is an error, never a
silently repeated frame). `VideoEncoder` appends episodes to one MP4 and reports where each
episode's frames start and end in it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robotlearn.data.layout import DatasetError

# Encoder names tried for each codec name a user gives (the first one PyAV has is used).
ENCODERS = {"h264": ("libx264", "h264"), "av1": ("libsvtav1", "libaom-av1", "av1")}


def decode_frames(path: str | Path, times: np.ndarray, fps: float, where: str = "") -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of `path` at `times` (seconds, ascending)."""
    import av

    path, times = Path(path), np.asarray(times, np.float64)
    if not path.is_file():
        raise DatasetError(f"{where}: video file {path} does not exist")
    tol = 0.5 / fps
    t0, t1 = float(times[0]) - tol, float(times[-1]) + tol
    got_t: list[float] = []
    got: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if t0 > 0:  # jump to the keyframe before the episode (files hold many episodes)
                container.seek(int(t0 / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    raise DatasetError(f"{where}: {path} has frames without timestamps (pts)")
                t = float(frame.time)
                if t < t0:
                    continue
                if t > t1:
                    break
                got_t.append(t)
                got.append(frame.to_ndarray(format="rgb24"))
    except av.error.FFmpegError as e:
        raise DatasetError(f"{where}: cannot decode {path}: {e}") from e
    if not got:
        raise DatasetError(f"{where}: {path} has no frames between {times[0]:.3f} s and {times[-1]:.3f} s")
    dec_t = np.asarray(got_t)
    order = np.argsort(dec_t, kind="stable")  # decode order is presentation order, but be sure
    dec_t = dec_t[order]
    pos = np.searchsorted(dec_t, times)
    lo, hi = np.clip(pos - 1, 0, len(dec_t) - 1), np.clip(pos, 0, len(dec_t) - 1)
    idx = np.where(np.abs(dec_t[lo] - times) <= np.abs(dec_t[hi] - times), lo, hi)  # the nearest frame
    err = np.abs(dec_t[idx] - times)
    if err.max() > tol:
        i = int(err.argmax())
        raise DatasetError(f"{where}: {path} has no frame at t={times[i]:.4f} s (frame {i}; nearest is "
                           f"{dec_t[idx[i]]:.4f} s, more than half a frame at {fps:g} fps away)")
    return np.stack([got[j] for j in order[idx]])


def encoder_name(codec: str) -> str:
    """The PyAV encoder for `codec` ('h264', 'av1', or an encoder name like 'libx264')."""
    import av

    for name in ENCODERS.get(codec, (codec,)):
        try:
            av.Codec(name, "w")
            return name
        except Exception:  # PyAV raises UnknownCodecError / ValueError depending on version
            continue
    raise DatasetError(f"video codec {codec!r}: this PyAV build has no encoder for it (tried {list(ENCODERS.get(codec, (codec,)))})")


class VideoEncoder:
    """Frames appended episode by episode into one MP4; `add` returns the episode's (from, to) seconds."""

    def __init__(self, path: str | Path, fps: float, codec: str = "h264", crf: int = 15,
                 pix_fmt: str = "yuv420p", gop: int = 2) -> None:
        import av

        self.path, self.fps = Path(path), float(fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec, self.crf, self.pix_fmt, self.gop = encoder_name(codec), crf, pix_fmt, gop
        self._container = av.open(str(self.path), "w", format="mp4")
        self._stream = None
        self.n_frames = 0

    def _open_stream(self, h: int, w: int) -> None:
        from fractions import Fraction

        if self.pix_fmt == "yuv420p" and (h % 2 or w % 2):
            raise DatasetError(f"{self.path}: {self.pix_fmt} video needs an even frame size, got {h}x{w}")
        rate = Fraction(self.fps).limit_denominator(1001)
        s = self._container.add_stream(self.codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, self.pix_fmt
        s.time_base = 1 / rate  # pts = frame number
        opts = {"g": str(self.gop), "crf": str(self.crf)}
        if self.codec == "libx264":
            opts["preset"] = "veryfast"
        s.options = opts
        self._stream = s

    def add(self, frames: np.ndarray) -> tuple[float, float]:
        import av

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise DatasetError(f"{self.path}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        if self._stream is None:
            self._open_stream(*frames.shape[1:3])
        elif (frames.shape[1], frames.shape[2]) != (self._stream.height, self._stream.width):
            raise DatasetError(f"{self.path}: frame size changed from {self._stream.height}x{self._stream.width} "
                               f"to {frames.shape[1]}x{frames.shape[2]}")
        start = self.n_frames
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = self.n_frames
            self._container.mux(self._stream.encode(vf))
            self.n_frames += 1
        return start / self.fps, self.n_frames / self.fps

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        if self._stream is not None:
            self._container.mux(self._stream.encode(None))
        self._container.close()
