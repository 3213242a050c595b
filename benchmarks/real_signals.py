"""Real-world learning signals on sim/lift, measured against the simulator's truth.

    .venv/bin/python benchmarks/real_signals.py [--parts a b c] [--seeds 1] [--rl-steps 8000]

(a) A learned success detector against the true one: how well does `train-reward` replace `info["success"]`?
Trains the classifier (`robotlearn train-reward`) on `--train-episodes` scripted sim/lift episodes with
`obs: proprio` and the 64x64 front camera (a mix of clean and noisy demos, so there are failures), labelled
the way a robot dataset would be (the last k steps of successful episodes). Then runs `--test-episodes`
new episodes (other seeds, the same mix, `terminate_on_success=false` so the cube stays up after a lift)
and compares, frame by frame and episode by episode, the classifier (p > threshold; k frames in a row
for an episode) with the task's own success detector. Prints precision and recall at both levels.
The classifier reads the camera only (`classifier.obs_keys=[images/front]`), so it can score any sim/lift
env with that camera, whatever its state holds.

(b) Residual RL (benchmarks/residual_rl.py's lock-step run, CPU recipe `rl=cpu`, its BC base on
privileged state) with the reward from (a)'s classifier on the front camera (`reward=classifier:<dir>`,
the env made with `terminate_on_success=false`, so only the classifier ends an episode) against the same
run with the task's true reward. The RL itself reads the privileged state in both, so the comparison
isolates the reward source; evaluation always counts the true detector on the plain task.

(c) The true-reward run of (b) against the same run with a simulated human (`intervene=expert`; by default
the patient one, `--human`: the clean scripted expert finishes every episode the policy has not succeeded
in after 50 steps; its steps join the demo half of each batch): success vs env steps and the share of
steps the human drove, per 1000 env steps of training.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import sys

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # residual_rl.py, next to this file
ENV = {"obs": "proprio", "cameras": ["front"], "image_size": 64}
CAMERA = {"cameras": ["front"], "image_size": 64}  # what the classifier needs from an env
TASK = "sim/lift"
TARGET = 0.9


def pr(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "positives": int(truth.sum()),
            "n": int(len(truth))}


def classifier_part(args, out: Path) -> tuple[dict, Path]:
    """(a): train the classifier on scripted episodes, then score it against the true detector."""
    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.config import load
    from robotlearn.cli.train_reward import TrainRewardConfig, run
    from robotlearn.envs import make_env
    from robotlearn.envs.registry import env_config
    from robotlearn.rewards.classifier import load_classifier

    env_cfg = {**env_config(TASK), **ENV}
    demos = out / "train.zarr"
    if not demos.exists():  # half clean, half noisy scripted episodes: successes and failures
        half = args.train_episodes // 2
        collect(CollectConfig(env=env_cfg, episodes=half, noise=0.1, out=str(demos), progress=False))
        collect(CollectConfig(env=env_cfg, episodes=args.train_episodes, noise=1.0, seed=1000, out=str(demos),
                              progress=False))
    t = time.time()
    clf_dir = out / "reward" / "classifier"
    res = run(load("train_reward", [f"dataset={demos}", f"out_dir={out / 'reward'}", f"steps={args.steps}",
                                    "classifier.obs_keys=[images/front]", "progress=true"], TrainRewardConfig))
    train_s = time.time() - t
    clf = load_classifier(clf_dir)
    thr, k = clf.cfg.threshold, clf.cfg.consecutive
    env = make_env({**env_cfg, "terminate_on_success": False})
    frame_pred, frame_true, ep_pred, ep_true = [], [], [], []
    for i in range(args.test_episodes):
        expert = env.make_expert(noise=0.1 if i % 2 == 0 else 1.0, seed=10_000 + i)
        obs, _ = env.reset(seed=10_000 + i)
        run_len, ep_p, ep_t, done = 0, False, False, False
        while not done:
            obs, _, term, trunc, info = env.step(expert.act(obs)[0])
            positive = clf(obs) > thr
            run_len = run_len + 1 if positive else 0
            frame_pred.append(positive)
            frame_true.append(bool(info["success"]))
            ep_p, ep_t, done = ep_p or run_len >= k, ep_t or bool(info["success"]), term or trunc
        ep_pred.append(ep_p)
        ep_true.append(ep_t)
    env.close()
    result = {"frames": pr(np.array(frame_pred), np.array(frame_true)),
              "episodes": pr(np.array(ep_pred), np.array(ep_true)), "held_out_train_split": res["held_out"],
              "threshold": thr, "consecutive": k, "train_s": train_s}
    f, e = result["frames"], result["episodes"]
    print(f"(a) classifier vs the true detector on {args.test_episodes} new episodes: frames precision "
          f"{f['precision']:.3f} recall {f['recall']:.3f} ({f['positives']} true-success frames of {f['n']}); "
          f"episodes (k={k} in a row) precision {e['precision']:.3f} recall {e['recall']:.3f} "
          f"({e['positives']} successful of {e['n']}); trained in {train_s:.0f} s", flush=True)
    return result, clf_dir


def intervention_rate(log: Path, bin_steps: int) -> list[tuple[int, float]]:
    """Share of env steps the simulated human drove, per `bin_steps` of training, from the run's zarr log."""
    from robotlearn.data.reader import EpisodeDataset

    flags = np.asarray(EpisodeDataset(log).array("is_intervention")[:], bool)
    return [(s + len(flags[s:s + bin_steps]), float(flags[s:s + bin_steps].mean()))
            for s in range(0, len(flags), bin_steps)]


def rl_parts(args, out: Path, clf_dir: Path | None) -> dict:
    """(b) and (c): one lock-step residual RL run per (variant, seed), `args.jobs` at a time."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from bench_pool import parse_kv, rl_worker_init
    from residual_rl import TASKS, make_base_policy, rl_config, run_rl
    from rl_report import steps_to

    d = make_base_policy(TASK, out / "rl", seed=0, recipe=parse_kv(args.base, "--base", allowed=TASKS[TASK]))
    bc, demos = str(d / "bc" / "checkpoints" / "last"), str(d / "demos.zarr")
    rl = rl_config("cpu", False)
    variants = {} if args.skip_baseline else {"true reward": ({}, "env")}
    if "b" in args.parts:
        if clf_dir is None:
            raise SystemExit("part b needs part a's classifier: run with --parts a b")
        variants["classifier reward"] = ({**CAMERA, "terminate_on_success": False}, f"classifier:{clf_dir}")
    if "c" in args.parts:
        variants["true reward + interventions"] = ({"intervene": "expert", **parse_kv(args.human, "--human")}, "env")
    jobs = {(name, seed): dict(task=TASK, base_spec=bc, demos=demos, rl=rl, steps=args.rl_steps,
                               eval_every=args.eval_every, episodes=args.eval_episodes, seed=seed,
                               work=d / f"{name.replace(' ', '_').replace('+', 'and')}_s{seed}", env_kwargs=kw,
                               reward=reward)
            for name, (kw, reward) in variants.items() for seed in range(args.seeds)}
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=rl_worker_init,
                             initargs=(1 if args.jobs > 1 else 2,)) as pool:
        futures = {k: pool.submit(run_rl, **v) for k, v in jobs.items()}
        runs = {k: f.result() for k, f in futures.items()}
    out_runs = {}
    for (name, seed), r in runs.items():
        r = {**r, "steps_to_90": steps_to(r["curve"], TARGET)}
        if "interventions" in name:
            r["intervention_rate"] = intervention_rate(jobs[(name, seed)]["work"] / "online.zarr", 1000)
        out_runs.setdefault(name, []).append(r)
    return {"base": bc, "recipe": "configs/rl/cpu.yaml", "runs": out_runs}


def plot(rl: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in rl["runs"].items():
        for i, r in enumerate(runs):
            x, y = zip(*r["curve"])
            axes[0].plot(x, y, label=f"{name} (seed {i})")
            if "intervention_rate" in r:
                xs, ys = zip(*r["intervention_rate"])
                axes[1].plot(xs, ys, label=f"seed {i}")
    axes[0].axhline(TARGET, color="k", lw=0.5)
    axes[0].set(title=f"{TASK}: true success (eval) vs env steps", xlabel="env steps", ylabel="success rate",
                ylim=(-0.02, 1.02))
    axes[1].set(title="share of steps the simulated human drove", xlabel="env steps", ylabel="intervention rate",
                ylim=(0, None))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    p.add_argument("--train-episodes", type=int, default=30)
    p.add_argument("--test-episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=1500, help="classifier training steps")
    p.add_argument("--seeds", type=int, default=1, help="RL seeds per variant (b, c)")
    p.add_argument("--rl-steps", type=int, default=8000, help="env steps per RL run")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2, help="RL runs in parallel (processes)")
    p.add_argument("--skip-baseline", action="store_true",
                   help="(b, c) without the true-reward run, for comparing with an earlier run's (same --out)")
    p.add_argument("--base", nargs="*", default=["demo_noise=0.6"], metavar="KEY=VALUE",
                   help="(b, c) the RL base's recipe on top of benchmarks/residual_rl.py's TASKS entry (default "
                        "%(default)s: its noise-0.8 base did not improve with RL in 8k steps, "
                        "docs/results/real_signals.md); use a new --out: the base is cached there")
    p.add_argument("--human", nargs="*", default=["intervene_stray_m=0", "intervene_after=50"], metavar="KEY=VALUE",
                   help="(c) the simulated human's env kwargs (default %(default)s: the patient human, who finishes "
                        "the episodes the policy has not succeeded in after 50 steps)")
    p.add_argument("--out", default="/tmp/robotlearn-real-signals")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1 if args.jobs > 1 else 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    result: dict = {"args": vars(args)}
    clf_dir = None
    if "a" in args.parts:
        result["classifier"], clf_dir = classifier_part(args, out)
    if {"b", "c"} & set(args.parts):
        result["rl"] = rl_parts(args, out, clf_dir)
        plot(result["rl"], out / "real_signals.png")
        for name, runs in result["rl"]["runs"].items():
            for i, r in enumerate(runs):
                curve = " ".join(f"{v:.0%}" for _, v in r["curve"])
                iv = (" | intervention rate per 1k steps " + " ".join(f"{v:.2f}" for _, v in r["intervention_rate"])
                      if "intervention_rate" in r else "")
                print(f"({'b' if 'classifier' in name else 'c' if 'interventions' in name else 'b/c'}) {name} "
                      f"seed {i}: success every {args.eval_every} steps {curve}; steps to {TARGET:.0%} "
                      f"{r['steps_to_90'] or '-'}; {r['train_wall_s']:.0f} s training wall{iv}", flush=True)
    result["wall_s"] = time.time() - t0
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"total {result['wall_s'] / 60:.1f} min; data: {out / 'result.json'}"
          + (f"; plot: {out / 'real_signals.png'}" if "rl" in result else ""))


if __name__ == "__main__":
    main()
