"""Does the residual's critic know which way the hole is? An offline probe for the peg tasks.

Fits the critic ensemble alone (no actor updates) on a benchmark run's demos and on a logged online run
(its online.zarr), exactly as the learner samples them, then asks it, at the logged states where the peg tip
is near the hole (2-15 mm off its axis, 30 mm above to 10 mm below its top face):
  - cos: the cosine between dQ/d(action x, y) at the base action and the direction from the tip to the hole
    (action x, y move the TCP along world x, y); 1 = the critic points at the hole, 0 = it does not know;
  - Q(toward) - Q(away): the critic's value of a `--delta` step toward the hole minus one away from it;
  - calibration: Q at 1, 5, 20, 60 steps before the end of successful and failed episodes (gamma^k and 0
    for a critic that has learned the values).
Each `--norm` (rl.state_norm) is probed on the same data, so they can be compared.

    MUJOCO_GL=egl .venv/bin/python benchmarks/peg_critic_probe.py \\
        --run /tmp/bench/pick1/cpu/sim_peg_pick_insert --online <that dir>/residual_s0/online.zarr
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from residual_rl import rl_config  # noqa: E402

from robotlearn.data import EpisodeDataset  # noqa: E402
from robotlearn.envs import make_env  # noqa: E402
from robotlearn.policies.registry import make_base  # noqa: E402
from robotlearn.runtime.learner import Learner, LearnerConfig, _to_learner_batch  # noqa: E402


def probe(task: str, run: Path, online: Path, norm: str, updates: int, delta: float, sets: list[str],
          seed: int = 0) -> dict:
    torch.manual_seed(seed)
    rl = replace(rl_config("cpu", False, [*sets, f"state_norm={norm}"]), critic_warmup_updates=1 << 40)
    env = make_env(task)
    names = list(env.env_info.state_names)
    hole = [names.index(f"hole_minus_tip_{a}") for a in "xyz"]
    with tempfile.TemporaryDirectory() as tmp:
        L = Learner(None, rl, LearnerConfig(out_dir=tmp, resume=False, tensorboard=False, progress=False, seed=seed),
                    env.env_info, env.observation_space, str(run / "demos.zarr"),
                    make_base(str(run / "bc" / "checkpoints" / "last"), env, seed=seed))
        ds = EpisodeDataset(str(online))
        keys = ["state", "action", "base_action", "reward", "is_intervention"]
        terminated, success = ds.meta_array("terminated"), ds.meta_array("success").astype(bool)
        episodes = [ds.get_episode(i, keys=keys) for i in range(ds.n_episodes)]
        for ep, term in zip(episodes, terminated):
            L._add_online(ep, bool(term))
        rng = np.random.default_rng(seed)
        for _ in range(updates):
            m = L.learner.update(_to_learner_batch(L.sampler.sample(rl.batch_size, rng)))
        L.close()
    lr = L.learner
    state = np.concatenate([e["state"] for e in episodes])
    base = np.concatenate([e["base_action"] for e in episodes])
    off = state[:, hole]  # (N, 3) hole - tip (m)
    dist = np.linalg.norm(off[:, :2], axis=1)
    near = np.flatnonzero((dist > 0.002) & (dist < 0.015) & (off[:, 2] > -0.03) & (off[:, 2] < 0.01))
    s = lr.actor.normalize(torch.as_tensor(state[near]))
    b = torch.as_tensor(base[near])
    want = off[near, :2] / dist[near, None]  # unit xy direction tip -> hole
    a = b.clone().requires_grad_(True)
    grad = torch.autograd.grad(lr.critic(s, a).mean(0).sum(), a)[0][:, :2].numpy()
    cos = (grad * want).sum(1) / (np.linalg.norm(grad, axis=1) + 1e-12)
    step = torch.zeros_like(b)
    step[:, :2] = torch.as_tensor(want * delta, dtype=torch.float32)
    with torch.no_grad():
        gain = (lr.critic(s, (b + step).clamp(-1, 1)).mean(0) - lr.critic(s, (b - step).clamp(-1, 1)).mean(0)).numpy()
    ends = np.cumsum([len(e["state"]) for e in episodes])
    starts = ends - np.array([len(e["state"]) for e in episodes])
    action = np.concatenate([e["action"] for e in episodes])
    calib = {}
    for label, eps in (("success", np.flatnonzero(success)), ("failure", np.flatnonzero(~success))):
        for back in (1, 5, 20, 60):
            idx = [ends[e] - back for e in eps if ends[e] - back >= starts[e]]
            with torch.no_grad():
                q = lr.critic(lr.actor.normalize(torch.as_tensor(state[idx])), torch.as_tensor(action[idx])).mean(0)
            calib[f"{label}@{back}"] = float(q.mean()) if idx else float("nan")
    return {"norm": norm, "near_states": len(near), "cos": float(cos.mean()), "cos_pos": float((cos > 0).mean()),
            "gain": float(gain.mean()), "gain_pos": float((gain > 0).mean()), "calib": calib,
            "episodes": len(episodes), "online_success": float(success.mean()), "critic_loss": m["critic_loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="sim/peg_pick_insert", choices=["sim/peg_insert", "sim/peg_pick_insert"])
    ap.add_argument("--run", required=True, type=Path, help="a residual_rl.py task folder: demos.zarr and bc/")
    ap.add_argument("--online", required=True, type=Path, help="a logged online run (online.zarr) to fit on")
    ap.add_argument("--norm", nargs="+", default=["std", "robust"], choices=["std", "robust"])
    ap.add_argument("--updates", type=int, default=20_000, help="critic updates")
    ap.add_argument("--delta", type=float, default=0.1, help="the probe step, normalised action units")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="rl.KEY=VALUE on top of rl=cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{args.task}: critic fitted on {args.run / 'demos.zarr'} + {args.online}, {args.updates} updates, "
          f"rl=cpu {' '.join(args.set)}")
    for norm in args.norm:
        r = probe(args.task, args.run, args.online, norm, args.updates, args.delta, args.set)
        c = r["calib"]
        print(f"  state_norm={norm}: {r['near_states']} near-hole states of {r['episodes']} episodes "
              f"({r['online_success']:.0%} successful); cos(dQ/da_xy, to hole) {r['cos']:.2f} (> 0 at "
              f"{r['cos_pos']:.0%}); Q(toward {args.delta:g}) - Q(away) {r['gain']:+.4f} (> 0 at {r['gain_pos']:.0%})")
        print("    Q before the end, successful episodes (1/5/20/60 steps): "
              + " / ".join(f"{c[f'success@{k}']:.2f}" for k in (1, 5, 20, 60))
              + "; failed: " + " / ".join(f"{c[f'failure@{k}']:.2f}" for k in (1, 5, 20, 60)), flush=True)


if __name__ == "__main__":
    main()
