"""How much a bounded residual could fix, on each seed's eval set of benchmarks/residual_rl.py.

residual_rl.py prints the headroom (frozen BC base + clip(expert - base, +-scale), a residual that
imitates the noise-free expert within the bound) on seed 0's 50 eval episodes only. Each seed is
evaluated on its own episodes (residual_rl.eval_reset_seed), so a seed whose eval set the
oracle cannot solve at a given scale cannot reach the target there either. Reuses the BC bases
that residual_rl.py cached under --out.

    .venv/bin/python benchmarks/headroom_per_seed.py [--profile cpu] [--tasks sim/reach] [--scales 0.1 0.3]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from residual_rl import TASKS, eval_success, headroom


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out", default="runs/bench_residual_rl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| task | eval set | frozen base | " + " | ".join(f"oracle x{s:g}" for s in args.scales) + " | expert |")
    print("|---|---|---|" + "---|" * (len(args.scales) + 1))
    for task in args.tasks:
        bc = Path(args.out) / args.profile / task.replace("/", "_") / "bc" / "checkpoints" / "last"
        if not bc.exists():
            raise SystemExit(f"{bc} not found: run benchmarks/residual_rl.py --profile {args.profile} first")
        for seed in range(args.seeds):
            room = headroom(task, str(bc), args.scales, args.episodes, seed)
            row = [eval_success(task, str(bc), None, args.episodes, seed), *room.values(),
                   eval_success(task, "expert", None, args.episodes, seed)]
            print(f"| {task} | seed {seed} | " + " | ".join(f"{v:.0%}" for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
