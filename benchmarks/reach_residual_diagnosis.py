"""Why sim/reach is hard for the residual: what base and residual do near the target.

Reads a fine-tune run's online log (`<out_dir>/online.zarr`, every executed step with its
base action) and, per 2k env steps, compares the executed residual (action - base_action)
with what the noise-free expert would need there: the saturating step towards the target
(sim/reach's state ends with target - TCP; `max_delta` = 2 cm per unit action).
Only steps within `--near` metres of the target count. `slope` regresses the residual on the
base action over those steps (all dims pooled): near -1 the residual cancels the base, near 0 it
does not depend on it.

    .venv/bin/python benchmarks/reach_residual_diagnosis.py runs/finetune/online.zarr [--near 0.06]
"""
from __future__ import annotations

import argparse

import numpy as np

from robotlearn.data import EpisodeDataset

MAX_DELTA = 0.02  # sim/reach metres per unit action


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help="online.zarr of a sim/reach fine-tune run")
    ap.add_argument("--near", type=float, default=0.06, help="distance to the target that counts as near (m)")
    ap.add_argument("--bin", type=int, default=2000, help="env steps per row")
    args = ap.parse_args()
    ds = EpisodeDataset(args.log)
    d = ds.load(["state", "action", "base_action"])
    success = ds.meta_array("success")
    rows = []  # (first env step, success, min distance, |residual| near, |expert - base| near)
    near_pairs = []  # (first env step, success, base (n, 3), residual (n, 3)) of the near steps
    start = 0
    for i, end in enumerate(ds.episode_ends):
        rel = d["state"][start:end, -3:]  # target - TCP (T, 3)
        dist = np.linalg.norm(rel, axis=1)
        base = d["base_action"][start:end, :3]  # (T, 3)
        residual = d["action"][start:end, :3] - base  # (T, 3) incl. exploration noise
        expert = rel / MAX_DELTA
        expert /= np.maximum(np.abs(expert).max(1, keepdims=True), 1.0)  # saturating step to the target
        need = expert - base
        near = dist < args.near
        rows.append((start, success[i], dist.min(),
                     np.abs(residual[near]).mean() if near.any() else np.nan,
                     np.abs(need[near]).mean() if near.any() else np.nan))
        near_pairs.append((start, success[i], base[near], residual[near]))
        start = int(end)
    r = np.array(rows, dtype=float)
    print(f"{args.log}: per-dim means over steps within {args.near * 100:.0f} cm of the target")
    print("env steps    episodes  success | failures: closest (cm)  |residual|  |expert - base|  slope")
    for lo in range(0, int(r[-1, 0]) + 1, args.bin):
        m = (r[:, 0] >= lo) & (r[:, 0] < lo + args.bin)
        f = m & (r[:, 1] == 0)
        pairs = [(b, res) for st, ok, b, res in near_pairs if lo <= st < lo + args.bin and not ok and len(b)]
        b, res = (np.concatenate(x).ravel() for x in zip(*pairs)) if pairs else (np.zeros(0), np.zeros(0))
        slope = np.polyfit(b, res, 1)[0] if len(b) > 2 else np.nan
        print(f"{lo:6d}-{lo + args.bin:<6d} {m.sum():6d}  {r[m, 1].mean():7.0%} | {np.nanmean(r[f, 2]) * 100:19.1f}"
              f"  {np.nanmean(r[f, 3]):10.3f}  {np.nanmean(r[f, 4]):15.2f}  {slope:5.2f}")


if __name__ == "__main__":
    main()
