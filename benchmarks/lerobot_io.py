"""LeRobot export and import speed (frames/s, with video) and the image fidelity of a round trip.

Dataset: state (24,) + two 84x84 RGB cameras, frames rendered from real sim/lift expert episodes
(benchmarks/dataset_io.py's `real_frames`) and cycled into `--episodes` x `--steps`. One frame =
one step with both cameras. Export writes LeRobot v3.0 (one mp4 per camera, encoded per codec
given); import decodes it back into zarr. PSNR is over all frames of both cameras.

    python benchmarks/lerobot_io.py [--episodes 10 --steps 100 --codecs h264 av1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: warnings only
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402

from dataset_io import CAMS, real_frames  # noqa: E402
from robotlearn.data import EpisodeDataset, EpisodeWriter  # noqa: E402
from robotlearn.data.exporters import LeRobotExportConfig, export_lerobot  # noqa: E402
from robotlearn.data.importers import import_lerobot  # noqa: E402
from robotlearn.data.validate import disk_bytes  # noqa: E402


def build(path: Path, frames: dict[str, np.ndarray], episodes: int, steps: int) -> None:
    n = len(frames["state"])
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, attrs={"control_hz": 20.0}) as w:
        for e in range(episodes):
            idx = (e * steps + np.arange(steps)) % n
            ep = {k: v[idx] for k, v in frames.items()}
            ep["action"] = rng.uniform(-1, 1, (steps, 4)).astype(np.float32)
            w.add_episode(ep, success=True, source="scripted")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--codecs", nargs="+", default=["h264", "av1"])
    p.add_argument("--crf", type=int, default=LeRobotExportConfig.crf)
    args = p.parse_args()
    frames = real_frames()
    n = args.episodes * args.steps
    print(f"{len(frames['state'])} real sim/lift frames (2 x 84x84 cameras + state 24) cycled into "
          f"{args.episodes} episodes x {args.steps} steps = {n} frames; crf {args.crf}, yuv420p, gop 2")
    tmp = Path(tempfile.mkdtemp(prefix="lerobot_io-"))
    try:
        src = tmp / "src.zarr"
        build(src, frames, args.episodes, args.steps)
        ref = EpisodeDataset(src)
        cams = [f"images/{c}" for c in CAMS]
        want = ref.load(cams)
        print(f"{'codec':<8}{'export frames/s':>17}{'import frames/s':>17}{'video kB/frame':>16}{'PSNR dB':>9}")
        for codec in args.codecs:
            lr, back = tmp / f"lerobot_{codec}", tmp / f"back_{codec}.zarr"
            t0 = time.perf_counter()
            export_lerobot(src, lr, LeRobotExportConfig(codec=codec, crf=args.crf), progress="off")
            t_export = time.perf_counter() - t0
            t0 = time.perf_counter()
            import_lerobot(lr, back, progress="off")
            t_import = time.perf_counter() - t0
            got = EpisodeDataset(back).load(cams)
            quality = min(psnr(want[k], got[k]) for k in cams)
            video = disk_bytes(lr / "videos") / n
            print(f"{codec:<8}{n / t_export:>17.0f}{n / t_import:>17.0f}{video / 1000:>16.2f}{quality:>9.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
