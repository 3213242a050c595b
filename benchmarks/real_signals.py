"""A learned success detector against the true one: how well does `train-reward` replace `info["success"]`?

    .venv/bin/python benchmarks/real_signals.py [--train-episodes 30] [--test-episodes 200]

Trains the classifier (`robotlearn train-reward`) on `--train-episodes` scripted sim/lift episodes with
`obs: proprio` and the 64x64 front camera (a mix of clean and noisy demos, so there are failures), labelled
the way a robot dataset would be (the last k steps of successful episodes). Then runs `--test-episodes`
new episodes (other seeds, the same mix, `terminate_on_success=false` so the cube stays up after a lift)
and compares, frame by frame and episode by episode, the classifier (p > threshold; k frames in a row
for an episode) with the task's own success detector. Prints precision and recall at both levels.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
ENV = {"obs": "proprio", "cameras": ["front"], "image_size": 64}


def pr(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1), "positives": int(truth.sum()),
            "n": int(len(truth))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-episodes", type=int, default=30)
    p.add_argument("--test-episodes", type=int, default=200)
    p.add_argument("--steps", type=int, default=1500, help="classifier training steps")
    p.add_argument("--out", default="/tmp/robotlearn-real-signals")
    args = p.parse_args()
    import torch

    from robotlearn.cli.collect import CollectConfig, collect
    from robotlearn.cli.config import load
    from robotlearn.cli.train_reward import TrainRewardConfig, run
    from robotlearn.envs import make_env
    from robotlearn.envs.registry import env_config
    from robotlearn.rewards.classifier import load_classifier

    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env_cfg = {**env_config("sim/lift"), **ENV}
    demos = out / "train.zarr"
    if not demos.exists():  # half clean, half noisy scripted episodes: successes and failures
        half = args.train_episodes // 2
        collect(CollectConfig(env=env_cfg, episodes=half, noise=0.1, out=str(demos), progress=False))
        collect(CollectConfig(env=env_cfg, episodes=args.train_episodes, noise=1.0, seed=1000, out=str(demos),
                              progress=False))
    t = time.time()
    res = run(load("train_reward", [f"dataset={demos}", f"out_dir={out / 'reward'}", f"steps={args.steps}",
                                    "progress=true"], TrainRewardConfig))
    train_s = time.time() - t
    clf = load_classifier(out / "reward" / "classifier")
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
              "threshold": thr, "consecutive": k, "train_s": train_s, "args": vars(args)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    f, e = result["frames"], result["episodes"]
    print(f"classifier vs the true detector on {args.test_episodes} new episodes: frames precision "
          f"{f['precision']:.3f} recall {f['recall']:.3f} ({f['positives']} true-success frames of {f['n']}); "
          f"episodes (k={k} in a row) precision {e['precision']:.3f} recall {e['recall']:.3f} "
          f"({e['positives']} successful of {e['n']}); trained in {train_s:.0f} s")


if __name__ == "__main__":
    main()
