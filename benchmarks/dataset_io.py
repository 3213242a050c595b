"""Dataset I/O: write frames/s, on-disk bytes/frame, random-window sampling windows/s vs plain numpy.

Dataset: state (24,) float32 + two 84x84 RGB cameras (front, wrist), frames rendered
from real sim/lift expert episodes (so compression sees real images) and cycled.
Compares image chunking (frames per chunk). Sampling: windows of n_obs=2 history +
horizon=16 actions; the baseline is plain numpy fancy indexing on in-memory arrays
with the same window arithmetic. Disk reads hit the OS page cache (a warm dataset).

    python benchmarks/dataset_io.py [--episodes 20 --steps 100 --batches 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robotlearn.data import EpisodeDataset, EpisodeWriter, SequenceDataset, TransitionBuffer  # noqa: E402
from robotlearn.data.layout import IMAGE_CHUNK_FRAMES  # noqa: E402
from robotlearn.data.validate import disk_bytes  # noqa: E402

CAMS = ("front", "panda/wrist")


def real_frames(n_episodes: int = 4) -> dict[str, np.ndarray]:
    """Camera frames + states from scripted sim/lift episodes (rendered once, reused)."""
    from robotlearn.envs import make_env

    env = make_env("sim/lift", cameras=list(CAMS), image_size=84)
    out: dict[str, list] = {"state": [], **{f"images/{c}": [] for c in CAMS}}
    for ep in range(n_episodes):
        expert = env.make_expert(noise=0.2, seed=ep)
        obs, _ = env.reset(seed=ep)
        done = False
        while not done:
            for k in out:
                out[k].append(obs[k])
            obs, _, term, trunc, _ = env.step(expert.act(obs)[0])
            done = term or trunc
    env.close()
    return {k: np.stack(v) for k, v in out.items()}


def write(path: Path, frames: dict[str, np.ndarray], episodes: int, steps: int, chunk: int) -> float:
    """Stream episodes step by step through EpisodeWriter; returns frames/s (one frame = one step)."""
    n = len(frames["state"])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with EpisodeWriter(path, image_chunk_frames=chunk) as w:
        for e in range(episodes):
            for t in range(steps):
                i = (e * steps + t) % n
                w.add_step({k: v[i] for k, v in frames.items()}, rng.uniform(-1, 1, 4).astype(np.float32), 0.0)
            w.end_episode(success=True, source="scripted")
    return episodes * steps / (time.perf_counter() - t0)


def numpy_windows(arrays: dict[str, np.ndarray], anchor, start, end, n_obs: int, horizon: int) -> dict[str, np.ndarray]:
    """The baseline: same windows with plain numpy on in-memory arrays."""
    obs = np.clip(anchor[:, None] + np.arange(-n_obs + 1, 1), start[:, None], end[:, None] - 1)
    act = np.minimum(anchor[:, None] + np.arange(horizon), end[:, None] - 1)
    out = {k: v[obs] for k, v in arrays.items() if k != "action"}
    out["action"] = arrays["action"][act]
    return out


def rates(fns: dict, calls: int, per_call: int, rounds: int = 3) -> dict[str, float]:
    """Items/s per function, best of `rounds` interleaved rounds (the machine is shared: best is least disturbed)."""
    best = {k: 0.0 for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best[k] = max(best[k], calls * per_call / (time.perf_counter() - t0))
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 16])
    args = p.parse_args()
    torch.set_num_threads(1)
    frames = real_frames()
    print(f"{len(frames['state'])} real sim/lift frames (2 x 84x84 cameras + state 24) cycled into "
          f"{args.episodes} episodes x {args.steps} steps")
    tmp = Path(tempfile.mkdtemp(prefix="dataset_io-"))
    n_obs, horizon, B = 2, 16, args.batch
    rng = np.random.default_rng(0)
    rows = []
    try:
        for chunk in args.chunks:
            path = tmp / f"chunk{chunk}.zarr"
            fps = write(path, frames, args.episodes, args.steps, chunk)
            ds = EpisodeDataset(path)
            per_frame = disk_bytes(path) / ds.n_steps
            keys = ["state", *[f"images/{c}" for c in CAMS]]
            disk = SequenceDataset(ds, n_obs=n_obs, horizon=horizon, obs_keys=keys, in_memory=False)
            disk_rate = rates({"disk": lambda: disk.get_batch(rng.integers(0, len(disk), B))}, max(2, args.batches // 4), B)["disk"]
            rows.append((chunk, fps, per_frame, disk_rate))
        ds = EpisodeDataset(tmp / f"chunk{args.chunks[0]}.zarr")
        mem = SequenceDataset(ds, n_obs=n_obs, horizon=horizon, obs_keys=keys, in_memory=True)
        arrays = ds.load([*keys, "action"])

        def baseline():
            i = rng.integers(0, len(mem), B)
            return numpy_windows(arrays, mem.anchor[i], mem.ep_start[i], mem.ep_end[i], n_obs, horizon)

        r = rates({"base": baseline, "mem": lambda: mem.get_batch(rng.integers(0, len(mem), B))}, args.batches, B)
        base_rate, mem_rate = r["base"], r["mem"]
        loader = torch.utils.data.DataLoader(mem, batch_size=B, shuffle=True, drop_last=True)
        batches = iter(loader)

        def from_loader():
            nonlocal batches
            try:
                return next(batches)
            except StopIteration:
                batches = iter(loader)
                return next(batches)

        item_rate = rates({"loader": from_loader}, args.batches, B)["loader"]
        buf = TransitionBuffer.from_dataset(ds, keys=["state", "action"], n_step=3)
        state = arrays["state"]
        r = rates({"buf": lambda: buf.sample(256, rng),
                   "np": lambda: (lambda i: (state[i], state[i + 1]))(rng.integers(0, ds.n_steps - 1, 256))}, 200, 256)
        tr_rate, tr_base = r["buf"], r["np"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    raw = frames["state"][0].nbytes + sum(frames[f"images/{c}"][0].nbytes for c in CAMS) + 4 * 4 + 4 + 1
    print(f"\nraw bytes per frame (uncompressed): {raw}")
    print(f"{'image chunk':>12} {'write frames/s':>15} {'bytes/frame':>12} {'compression':>12} {'disk windows/s':>15} {'vs numpy':>9}")
    for chunk, fps, per_frame, disk_rate in rows:
        print(f"{chunk:>12} {fps:>15.0f} {per_frame:>12.0f} {raw / per_frame:>11.1f}x {disk_rate:>15.0f} "
              f"{disk_rate / base_rate:>8.3f}x")
    print(f"\nrandom windows (n_obs={n_obs}, horizon={horizon}, batch {B}), state + 2 cameras:")
    print(f"  plain numpy baseline (in memory)        {base_rate:>10.0f} windows/s  1.00x")
    print(f"  SequenceDataset.get_batch, in memory    {mem_rate:>10.0f} windows/s  {mem_rate / base_rate:.2f}x")
    print(f"  torch DataLoader(SequenceDataset)       {item_rate:>10.0f} windows/s  {item_rate / base_rate:.3f}x")
    chunk, _, _, disk_rate = next((r for r in rows if r[0] == IMAGE_CHUNK_FRAMES), rows[0])
    print(f"  SequenceDataset.get_batch, from zarr    {disk_rate:>10.0f} windows/s  {disk_rate / base_rate:.4f}x "
          f"(image chunk {chunk}{', the default' if chunk == IMAGE_CHUNK_FRAMES else ''})")
    print(f"TransitionBuffer.sample(256), state+action n-step: {tr_rate:,.0f} transitions/s "
          f"(plain numpy gather of s, s': {tr_base:,.0f}/s, {tr_rate / tr_base:.2f}x)")


if __name__ == "__main__":
    main()
