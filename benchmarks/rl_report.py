"""Tables and plots for the residual RL benchmarks (benchmarks/residual_rl.py, real_signals.py).

Input is the benchmark's `results` dict: {task: {"base": [success per seed],
"residual": [run, ...], "scratch": [run, ...]}}, a run being run_rl's dict with
"curve" = [(env steps, success), ...] (a run stopped early by --stop-held is shorter).
"""
from __future__ import annotations

import itertools
import os
import re
import textwrap
from pathlib import Path

import numpy as np

TARGET = 0.95  # "reached" in the tables, and what --stop-held holds
HEADROOM_SCALES = [0.1, 0.2, 0.3, 0.5]  # residual bounds of the oracle-residual headroom probe


def filled(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(eval steps, (seeds, points) success) on the longest run's grid; a run stopped early (--stop-held: it held
    >= 95%) keeps its last value from there on."""
    x = np.array([c[0] for c in max((r["curve"] for r in runs), key=len)])
    y = np.array([[c[min(i, len(c) - 1)][1] for i in range(len(x))] for c in (r["curve"] for r in runs)])
    return x, y


def steps_to(curve: list, level: float) -> int | None:
    """First eval step at which success >= level (None if never)."""
    return next((int(x) for x, s in curve if s >= level - 1e-9), None)


def speedup(residual: list[dict], scratch: list[dict]) -> list[dict]:
    """Per seed: from-scratch's final success (the mean of its last two eval points), the steps at which scratch
    first reaches it and at which the residual does, and their ratio (issue 20's "at most 1/3 of its steps")."""
    rows = []
    for res, scr in zip(residual, scratch):
        final = float(np.mean([s for _, s in scr["curve"][-2:]]))
        s_scr, s_res = steps_to(scr["curve"], final), steps_to(res["curve"], final)
        ratio = None if s_res is None or s_scr is None or s_res == s_scr == 0 else (
            s_scr / s_res if s_res else float("inf"))  # both "at step 0": no ratio
        rows.append({"scratch_final": final, "scratch_steps": s_scr, "residual_steps": s_res, "ratio": ratio})
    return rows


_EVAL = re.compile(r"^\s+(\S+) (residual|scratch) seed (\d+)(?: \(.*\))?: step\s+(\d+) success (\d+)% "
                   r"\((\d+)s training wall\)")
_BASE = re.compile(r"^\s+(\S+) frozen BC base seed (\d+): (\d+)%")
_ROOM = re.compile(r"^\s+(\S+) headroom .*?\): (.*)$")


def results_from_log(text: str) -> tuple[str, dict, dict]:
    """(header, results, headroom) from a residual_rl.py log (its printed eval lines), for a run that was stopped
    before it wrote results.json. Each method keeps its seeds 0, 1, ... up to the first it has no eval points for
    (the residual's seeds run first, so it may have more than scratch); a seed's frozen-base success is
    its base eval line or, where that job had not run, the residual's step-0 eval (the residual's last layer starts
    at zero, so that is the frozen base on the same episodes). A run's training wall is its last eval point's (to
    the second); its update count is not in the log (None)."""
    runs: dict = {}
    base: dict = {}
    room: dict = {}
    for line in text.splitlines():
        if m := _EVAL.match(line):
            task, method, seed, step, pct, wall = m.groups()
            runs.setdefault(task, {}).setdefault(method, {}).setdefault(int(seed), []).append(
                (int(step), int(pct) / 100, float(wall)))
        elif m := _BASE.match(line):
            base.setdefault(m[1], {})[int(m[2])] = int(m[3]) / 100
        elif m := _ROOM.match(line):
            room[m[1]] = {float(k): int(v) / 100 for k, v in re.findall(r"scale ([\d.]+): (\d+)%", m[2])}
    results = {}
    for task, methods in runs.items():
        if set(methods) != {"residual", "scratch"}:
            continue
        step0 = {s: pts[0][1] for s, pts in methods["residual"].items() if pts[0][0] == 0}
        known = {**step0, **base.get(task, {})}  # seeds whose frozen-base success is known

        def seeds_of(method: str) -> list[int]:  # 0, 1, ... up to the first seed not run (the report's numbering)
            return list(itertools.takewhile(lambda s: s in methods[method] and s in known, itertools.count()))

        if not seeds_of("scratch"):
            continue
        results[task] = {"base": [known[s] for s in seeds_of("residual")]}
        for method, by_seed in methods.items():
            results[task][method] = []
            for s in seeds_of(method):
                pts = by_seed[s]
                hit = next((p for p in pts if p[1] >= TARGET - 1e-9), None)
                results[task][method].append({
                    "curve": [(x, v) for x, v, _ in pts], "train_wall_s": pts[-1][2], "updates": None,
                    "wall_to_target_s": hit[2] if hit else None, "steps_to_target": hit[0] if hit else None})
    header = text.splitlines()[0] if text else ""
    return header, results, {t: r for t, r in room.items() if t in results}


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, style, color in (("residual", "-", "C0"), ("scratch", "--", "C1")):
            if name not in results[task]:  # --methods ran only the other
                continue
            runs = results[task][name]
            x, y = filled(runs)
            ax.plot(x, y.mean(0), style, color=color, lw=2,
                    label={"residual": "BC base + residual", "scratch": "zero base (RLPD-style)"}[name] + " (mean)")
            for run in runs:  # per seed, to where it ran
                c = np.array(run["curve"])
                ax.plot(c[:, 0], c[:, 1], style, color=color, lw=0.7, alpha=0.5)
        ax.axhline(np.mean(results[task]["base"]), color="gray", ls=":", label="frozen BC base")
        ax.axhline(TARGET, color="k", lw=0.5)
        ax.set(title=task, xlabel="env steps", ylabel="success rate", ylim=(-0.02, 1.02))
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle("\n".join(textwrap.wrap(title, 75 * len(tasks))), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def report(results: dict, rates: dict, room: dict, header: str, wall: float) -> None:
    print(f"\n{header}\n")
    print("| task | " + " | ".join(f"oracle residual x{s:g}" for s in HEADROOM_SCALES) + " |")
    print("|---|" + "---|" * len(HEADROOM_SCALES))
    for task, r in room.items():
        print(f"| {task} | " + " | ".join(f"{r[s]:.0%}" for s in HEADROOM_SCALES) + " |")
    print("(headroom: frozen base + clip(expert - base, +-scale), a residual imitating the noise-free expert within "
          "the bound: evidence the bound leaves room, not an upper limit)\n")
    print("| task | method | success at env steps (mean over seeds) | final | steps to 95% | train wall to 95% |")
    print("|---|---|---|---|---|---|")
    for task, r in results.items():
        base = float(np.mean(r["base"]))
        print(f"| {task} | frozen BC base | - | {base:.0%} | - | - |")
        for name, label in (("residual", "BC base + residual"), ("scratch", "zero base (RLPD-style)")):
            if name not in r:
                continue
            runs = r[name]
            xs, ys = filled(runs)
            pts = ys.mean(0)
            curve = " ".join(f"{x / 1000:g}k:{s:.0%}" for x, s in zip(xs, pts))
            hit = [run["steps_to_target"] for run in runs if run["steps_to_target"] is not None]
            wall_hit = [run["wall_to_target_s"] for run in runs if run["wall_to_target_s"] is not None]
            to_t = f"{np.mean(hit):.0f} ({len(hit)}/{len(runs)} seeds)" if hit else f"not reached (0/{len(runs)})"
            wall_t = f"{np.mean(wall_hit):.0f} s" if wall_hit else "-"
            print(f"| {task} | {label} | {curve} | {pts[-1]:.0%} | {to_t} | {wall_t} |")
    curves = [run["curve"] for r in results.values() for m in ("residual", "scratch") for run in r.get(m, [])]
    grid = next((f"{c[1][0] / 1000:g}k" for c in curves if len(c) > 1), "1k")  # the eval spacing
    print(f"\n| task | method | seed | success at 0, {grid}, ... | steps to 90% | steps to 95% | env steps run | "
          "train wall |")
    print("|---|---|---|---|---|---|---|---|")
    for task, r in results.items():
        for name in ("residual", "scratch"):
            for seed, run in enumerate(r.get(name, [])):
                curve = " ".join(f"{s:.0%}" for _, s in run["curve"])
                t90, t95 = steps_to(run["curve"], 0.90), steps_to(run["curve"], 0.95)
                print(f"| {task} | {name} | {seed} | {curve} | {t90 if t90 is not None else '-'} | "
                      f"{t95 if t95 is not None else '-'} | {run['curve'][-1][0]} | {run['train_wall_s']:.0f} s |")
    print("(a run stopped with --stop-held keeps its last value in the means above)\n")
    for task, r in results.items():
        if not {"residual", "scratch"} <= set(r):
            continue
        k = min(len(r["residual"]), len(r["scratch"]))  # the seeds both methods ran (a log cut short: fewer)
        x, res = filled(r["residual"][:k])
        x2, scr = filled(r["scratch"][:k])
        n = min(len(x), len(x2))  # the grids share eval_every; compare where both have points
        res, scr, x = res.mean(0)[:n], scr.mean(0)[:n], x[:n]
        gap = " ".join(f"{xi / 1000:g}k:{100 * (a - b):+.0f}" for xi, a, b in zip(x, res, scr))
        print(f"{task}: residual - scratch (points, mean over the {k} seed{'s' if k > 1 else ''} both ran) {gap}; "
              "residual >= scratch at every eval point: "
              f"{'yes' if np.all(res >= scr) else 'no'}")
        for seed, row in enumerate(speedup(r["residual"], r["scratch"])):
            ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
            print(f"  seed {seed}: scratch's final success {row['scratch_final']:.0%}, reached by scratch at "
                  f"{row['scratch_steps']} and by the residual at {row['residual_steps']} env steps: {ratio}")
    if rates:
        print("\nconcurrent async run (1 actor process paced at 0.8 x learner rate / UTD + learner, residual recipe):")
    for task, r in rates.items():
        print(f"  {task}: learner {r['learner_updates_per_s']:.1f} updates/s while the actor ran "
              f"{r['actor_steps_per_s']:.1f} steps/s (paced at {r['actor_pace_hz']:.1f}; learner alone "
              f"{r['learner_alone_updates_per_s']:.1f} updates/s)")
    if np.isfinite(wall):
        print(f"benchmark wall time: {wall / 60:.1f} min (cores: {os.cpu_count()})")
