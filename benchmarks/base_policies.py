"""Base-policy benchmark: the success rates later issues improve on, and CPU inference latency.

For each sim task: record noisy scripted demos (zarr), train BC-MLP and diffusion
with the train-bc code path (configs/policy/*.yaml), evaluate each on N episodes
(success with a 95% Wilson interval), and time `act()` at batch 1 on CPU
(p50/p99 per call; per control step once amortised over the executed chunk)
against the task's control period.

    python benchmarks/base_policies.py --quick      # ~minutes on 2 shared cores
    python benchmarks/base_policies.py              # full profile
Writes <out>/base_policies.json and base_policies.png.

Measured here (2 shared cores, 1 torch thread, load ~1-2; 50 episodes; bc_mlp replans every step,
diffusion executes 4 of 16 steps, 10 DDIM steps; control period 50 ms):
  full profile (100 successful demos, noise 0.3, 3000 steps):
    reach BC 90% (79-96) / diffusion 92% (81-97); lift 100% / 100%; pick_place 100% / 96% (87-99)
  --quick --demos 10 --noise 1.0 (weak bases, room for residual RL):
    lift BC 22% (13-35) / diffusion 60% (46-72); pick_place (9 demos) BC 8% (3-19) / diffusion 52% (39-65)
  act() batch 1: BC 0.27 ms p50 / 0.4-0.6 ms p99 per call (= per step);
    diffusion 33-39 ms p50 / 41-66 ms p99 per call, 8-10 ms p50 / 10-16 ms p99 per step amortised over 4.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robotlearn.cli.collect import CollectConfig, collect  # noqa: E402
from robotlearn.cli.config import load  # noqa: E402
from robotlearn.cli.train_bc import TrainBCConfig, run  # noqa: E402
from robotlearn.envs import make_env  # noqa: E402
from robotlearn.envs.registry import env_config  # noqa: E402
from robotlearn.policies.rollout import evaluate  # noqa: E402

PROFILES = {
    # demos per task, expert noise, training steps per policy, eval episodes, timed act() calls
    "full": dict(demos=100, noise=0.3, steps={"bc_mlp": 3000, "diffusion": 3000}, episodes=50, calls=300),
    "quick": dict(demos=40, noise=0.3, steps={"bc_mlp": 1500, "diffusion": 1500}, episodes=50, calls=100),
}
TASKS = ["sim/reach", "sim/lift", "sim/pick_place"]
POLICIES = ["bc_mlp", "diffusion"]


def act_latency(policy, env, calls: int) -> dict[str, float]:
    """Per-call act() wall time at batch 1 on real observations (ms)."""
    obs, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(5):  # warm-up: allocator, first-call overheads
        policy.act(obs)
    times = []
    for i in range(calls):
        if i % 10 == 0:
            policy.reset()
        t0 = time.perf_counter()
        policy.act(obs)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    chunk = policy.action_chunk_size
    return {"load_avg_1min": os.getloadavg()[0], "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "executed_chunk": chunk, "amortised_p50_ms": float(np.percentile(ms, 50) / chunk),
            "amortised_p99_ms": float(np.percentile(ms, 99) / chunk)}


def bench_task(task: str, prof: dict, out: Path, seed: int, progress: bool) -> dict:
    data = out / "data" / f"{task.replace('/', '_')}_noise{prof['noise']}_{prof['demos']}.zarr"
    shutil.rmtree(data, ignore_errors=True)  # fresh demos, so the expert's success rate is measured this run
    t0 = time.time()
    # Successful episodes only (as in curated demo sets); the expert's own success rate is reported.
    demos = collect(CollectConfig(env=env_config(task), episodes=prof["demos"], noise=prof["noise"], seed=seed,
                                  out=str(data), only_success=True, progress=progress))
    env = make_env(task)
    row = {"task": task, "control_hz": env.control_hz, "control_period_ms": 1e3 / env.control_hz,
           "demos": demos["episodes"], "expert_success_rate": demos["run_success_rate"],
           "collect_s": time.time() - t0, "policies": {}}
    for name in POLICIES:
        steps = prof["steps"][name]
        cfg = load("train_bc", [f"policy={name}", f"dataset={data}", f"steps={steps}", f"seed={seed}",
                                       "eval_every=0", "final_eval_episodes=0", "device=cpu",
                                       f"out_dir={out / 'runs' / task.replace('/', '_') / name}",
                                       f"progress={str(progress).lower()}"], TrainBCConfig)
        t0 = time.time()
        res = run(cfg)
        train_s = time.time() - t0
        policy = res.policy.eval()
        t0 = time.time()
        ev = evaluate(policy, env, prof["episodes"], seed=100_000, progress=progress)
        row["policies"][name] = {
            "success": ev.to_dict(), "train_steps": steps, "train_s": train_s, "train_ms_per_step": 1e3 * train_s / steps,
            "final_loss": res.metrics["losses"][-1][1], "eval_s": time.time() - t0,
            "params": sum(p.numel() for p in policy.parameters()),
            "ddim_steps": getattr(policy, "num_inference_steps", None),
            "latency": act_latency(policy, env, prof["calls"]),
        }
        print(f"{task} {name}: {ev.summary()} | act p50 {row['policies'][name]['latency']['p50_ms']:.2f} ms", flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    print("\n| task | demos (noisy expert success) | policy | success (95% CI) | act p50 / p99 ms | per step p50 / p99 ms | control period ms | train ms/step |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        for name, p in r["policies"].items():
            s, lat = p["success"], p["latency"]
            label = name + (f" ({p['ddim_steps']} DDIM)" if p["ddim_steps"] else "")
            print(f"| {r['task']} | {r['demos']} ({r['expert_success_rate']:.0%}) | {label} | "
                  f"{s['success_rate']:.0%} ({s['ci95'][0]:.0%}-{s['ci95'][1]:.0%}) | "
                  f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} | {lat['amortised_p50_ms']:.2f} / {lat['amortised_p99_ms']:.2f} | "
                  f"{r['control_period_ms']:.0f} | {p['train_ms_per_step']:.1f} |")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(POLICIES)
    for j, name in enumerate(POLICIES):
        xs = np.arange(len(rows)) + j * width
        rates = [r["policies"][name]["success"]["success_rate"] for r in rows]
        lo = [rate - r["policies"][name]["success"]["ci95"][0] for rate, r in zip(rates, rows)]
        hi = [r["policies"][name]["success"]["ci95"][1] - rate for rate, r in zip(rates, rows)]
        ax.bar(xs, rates, width, yerr=[lo, hi], capsize=3, label=name)
    ax.set_xticks(np.arange(len(rows)) + width * (len(POLICIES) - 1) / 2, [r["task"] for r in rows])
    ax.set(ylabel="success rate (95% CI)", ylim=(0, 1.05), title="base policies on noisy scripted demos")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer demos and training steps")
    ap.add_argument("--tasks", nargs="+", default=TASKS)
    ap.add_argument("--demos", type=int, help="override the profile's demos per task (fewer -> weaker bases)")
    ap.add_argument("--noise", type=float, help="override the profile's expert noise")
    ap.add_argument("--out", default="outputs/bench_base_policies")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prof = dict(PROFILES["quick" if args.quick else "full"])
    prof.update({k: v for k, v in (("demos", args.demos), ("noise", args.noise)) if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"profile {'quick' if args.quick else 'full'}: {prof}, torch threads {args.threads}, device cpu, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (latency is inflated on a busy machine)")
    rows = [bench_task(t, prof, out, args.seed, args.progress) for t in args.tasks]
    print_table(rows)
    result = {"profile": "quick" if args.quick else "full", "settings": prof, "threads": args.threads, "tasks": rows}
    (out / "base_policies.json").write_text(json.dumps(result, indent=2))
    plot(rows, out / "base_policies.png")
    print(f"\nwrote {out / 'base_policies.json'} and {out / 'base_policies.png'}")


if __name__ == "__main__":
    main()
