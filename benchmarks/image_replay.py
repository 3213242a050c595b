"""Image replay: memory per 100k transitions and sampling speed of `TransitionBuffer` with camera frames.

Frames are stored once per step as uint8 (the next observation is the bootstrap row by index, never a
second copy), so memory is frames x H x W x 3 bytes per step plus the low-dimensional keys. Prints, for
1 and 2 cameras at the given size: bytes per step, GiB per 100k transitions, and batch-256 n-step
samples/s (every sample gathers obs and next-obs frames).

    .venv/bin/python benchmarks/image_replay.py [--size 84] [--steps 20000] [--batch 256]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from robotlearn.data import TransitionBuffer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--steps", type=int, default=20_000, help="transitions held during the sampling test")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--state-dim", type=int, default=24)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ep_len = 100
    print(f"image replay, {args.size}x{args.size} uint8 frames, state {args.state_dim}, n_step 3, "
          f"batch {args.batch}, {args.steps} transitions held")
    for cams in (1, 2):
        keys = [f"images/cam{i}" for i in range(cams)] + ["state", "action", "base_action"]
        buf = TransitionBuffer(keys, n_step=3, gamma=0.99, capacity=args.steps)
        for _ in range(args.steps // ep_len):
            ep = {k: rng.integers(0, 255, (ep_len, args.size, args.size, 3), dtype=np.uint8)
                  for k in keys if k.startswith("images/")}
            ep.update(state=rng.normal(size=(ep_len, args.state_dim)).astype(np.float32),
                      action=np.zeros((ep_len, 4), np.float32), base_action=np.zeros((ep_len, 4), np.float32),
                      reward=np.zeros(ep_len, np.float32))
            buf.add_episode(ep, terminated=False)
        per_step = sum(a[0].nbytes for a in buf._store.values()) + 8 + 4 + 4 + 1 + 8  # + next, ret, disc, valid, episode
        buf.sample(args.batch, rng)  # warm
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2.0:
            buf.sample(args.batch, rng)
            n += 1
        dt = time.perf_counter() - t0
        print(f"  cameras {cams}: {per_step / 1e3:.1f} kB/step, {per_step * 1e5 / 2**30:.2f} GiB per 100k "
              f"transitions; {n / dt:.0f} batches/s = {n * args.batch / dt / 1e3:.0f}k samples/s")


if __name__ == "__main__":
    main()
