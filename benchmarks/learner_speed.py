"""Learner updates/s: our ResidualLearner vs a raw-torch probe (roofline) vs stable-baselines3 SAC.

For each ensemble size (default recipe: 10 critics; and 2 critics), batch 256,
hidden 256, state 24 / action 4 (sim/lift sizes):
  ours   ResidualLearner.update() on a host numpy batch (host->device copy, critic
         update, delayed actor update every `actor_delay`, Polyak, grad clipping)
  probe  the same networks' forward/backward only (target forward, critic fwd+bwd,
         actor fwd+bwd every `actor_delay`), tensors already on the device, no
         optimiser / clipping / Polyak: the compute every update must do
  sb3    stable-baselines3 SAC.train() with net_arch [256, 256], n_critics = E, batch 256
Targets: ours >= 70% of the probe, ours >= 2x SB3.
With `--precision fp32 bf16` ours and the probe also run under bf16 autocast
(`rl.precision=bf16`); SB3 stays fp32 (its default).

Why fp32 cannot reach 2x SB3 on a CPU: both are bound by the same matmuls. Counting
hidden-layer matmuls of one critic (fwd = 1, bwd = 2 with weight grads, 1 input-grad
only): ours does 2 target fwd + 3E critic + E (fwd + input grad)/actor_delay = 2 + 4E;
SB3 SAC does E target fwd + 3E critic + 3E actor (fwd + bwd incl. critic weight grads,
every update) = 7E. At E = 10 that caps fp32 at 70/42 = 1.67x, printed as "matmul bound".

    .venv/bin/python benchmarks/learner_speed.py [--updates 200] [--rounds 5] [--threads 2] [--precision fp32 bf16]

`--obs pixels` instead times learner updates from cameras (batch 256, --size px frames, 1 and 2 cameras)
next to state-only in the same run: rl.encoder=base (the learner sees frozen features, 64 per camera, as a
wider state) and rl.encoder=drq (conv encoders trained through the critic, frames decoded each update):

    .venv/bin/python benchmarks/learner_speed.py --obs pixels [--size 84] [--updates 5] [--critics 10 2]
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from robotlearn.rl.residual import ResidualConfig, ResidualLearner, combine

S, A, B = 24, 4, 256


def synthetic_batch(rng: np.random.Generator) -> dict[str, np.ndarray]:
    b = {k: rng.normal(size=(B, S)).astype(np.float32) for k in ("state", "next_state")}
    b.update({k: rng.uniform(-1, 1, (B, A)).astype(np.float32) for k in ("action", "base_action", "next_base_action")})
    b["reward"] = (rng.random(B) < 0.1).astype(np.float32)
    b["discount"] = np.full(B, 0.99**3, np.float32)
    return b


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, n: int, device: torch.device, warmup: int = 10) -> float:
    """Calls per second of fn() over n calls (after warm-up)."""
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return n / (time.perf_counter() - t)


class Ours:
    """ResidualLearner.update() on a host numpy batch (autocast inside when cfg.precision is bf16)."""

    def __init__(self, cfg: ResidualConfig, device: str) -> None:
        self.learner = ResidualLearner(S, A, cfg, device)
        self.batch = synthetic_batch(np.random.default_rng(0))
        self.device = self.learner.device

    def __call__(self) -> None:
        self.learner.update(self.batch)


class Probe:
    """The same networks' forward/backward only, tensors already on the device."""

    def __init__(self, learner: ResidualLearner) -> None:
        self.L, self.i = learner, 0
        self.b = learner.to_device(synthetic_batch(np.random.default_rng(1)))
        self.device = learner.device

    def __call__(self) -> None:
        with self.L.autocast:  # the same precision as the learner it probes
            self._fwd_bwd()

    def _fwd_bwd(self) -> None:
        L, b = self.L, self.b
        with torch.no_grad():
            ns = b["next_state"]
            pair = torch.arange(2, device=self.device)
            nq = L.critic_target(ns, combine(b["next_base_action"], L.actor_target(ns, b["next_base_action"])), pair)
            target = b["reward"] + b["discount"] * nq.min(0).values
        q = L.critic(b["state"], b["action"])
        ((q - target) ** 2).mean().backward()
        self.i += 1
        if self.i % L.cfg.actor_delay == 0:
            res = L.actor(b["state"], b["base_action"])
            L.critic.requires_grad_(False)  # the actor loss needs no critic weight gradients
            (-L.critic(b["state"], combine(b["base_action"], res)).mean()).backward()
            L.critic.requires_grad_(True)


class _BoxEnv(gym.Env):
    """Observation/action spaces only: SAC.train() samples from its replay buffer, never steps this."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (S,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (A,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(S, np.float32), {}

    def step(self, action):
        return np.zeros(S, np.float32), 0.0, False, False, {}


class SB3:
    """stable-baselines3 SAC.train(gradient_steps=1) on a pre-filled replay buffer."""

    def __init__(self, num_critics: int, device: str) -> None:
        from stable_baselines3 import SAC
        from stable_baselines3.common.logger import configure

        self.model = SAC("MlpPolicy", _BoxEnv(), batch_size=B, buffer_size=20_000, learning_starts=0, device=device,
                         policy_kwargs=dict(net_arch=[256, 256], n_critics=num_critics), verbose=0)
        self.model.set_logger(configure(None, []))
        rb, rng = self.model.replay_buffer, np.random.default_rng(2)
        rb.observations[:] = rng.normal(size=rb.observations.shape)
        rb.next_observations[:] = rng.normal(size=rb.next_observations.shape)
        rb.actions[:] = rng.uniform(-1, 1, rb.actions.shape)
        rb.rewards[:] = rng.random(rb.rewards.shape) < 0.1
        rb.full = True
        self.device = torch.device(device)

    def __call__(self) -> None:
        self.model.train(gradient_steps=1, batch_size=B)


def interleaved(fns: dict, n: int, rounds: int) -> dict[str, list[float]]:
    """Calls/s of each fn per round, rounds interleaved so shared-CPU load hits all alike."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            out[k].append(time_it(fn, max(1, n // rounds), fn.device, warmup=3))
    return out


def image_batch(rng: np.random.Generator, state_dim: int, cams: int, size: int) -> dict[str, np.ndarray]:
    b = {k: rng.normal(size=(B, state_dim)).astype(np.float32) for k in ("state", "next_state")}
    b.update({k: rng.uniform(-1, 1, (B, A)).astype(np.float32) for k in ("action", "base_action", "next_base_action")})
    b["reward"], b["discount"] = (rng.random(B) < 0.1).astype(np.float32), np.full(B, 0.99**3, np.float32)
    for i in range(cams):
        for pre in ("", "next/"):
            b[f"{pre}images/cam{i}"] = rng.integers(0, 255, (B, size, size, 3), dtype=np.uint8)
    return b


def pixels(args) -> None:
    """Updates/s: state only, encoder=base features, encoder=drq frames; 1 and 2 cameras."""
    rng = np.random.default_rng(0)
    feat = 64  # a BC checkpoint's keypoint features per camera (image_keypoints 32 -> 2 x 32)
    print(f"device={args.device} threads={args.threads} batch={B} hidden=256 state={S} action={A} frames "
          f"{args.size}x{args.size} timed updates={args.updates}")
    print("| critics | input | upd/s | ms/update |\n|---|---|---|---|")
    for e in args.critics:
        rows = [("state only", S, 0, "none"), ("encoder=base, 1 camera", S + feat, 0, "none"),
                ("encoder=base, 2 cameras", S + 2 * feat, 0, "none"), ("encoder=drq, 1 camera", S, 1, "drq"),
                ("encoder=drq, 2 cameras", S, 2, "drq")]
        for name, sd, cams, enc in rows:
            cfg = ResidualConfig(num_critics=e, critic_warmup_updates=0, encoder=enc)
            shapes = {f"images/cam{i}": (args.size, args.size, 3) for i in range(cams)} or None
            learner = ResidualLearner(sd, A, cfg, args.device, image_shapes=shapes)
            batch = image_batch(rng, sd, cams, args.size)
            n = args.updates if cams else max(args.updates, 50)
            ups = time_it(lambda: learner.update(batch), n, learner.device, warmup=2)
            print(f"| {e} | {name} | {ups:.1f} | {1e3 / ups:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=200, help="timed updates per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--critics", type=int, nargs="+", default=[10, 2])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (robust to shared CPUs)")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="learner precision(s)")
    ap.add_argument("--obs", default="state", choices=["state", "pixels"], help="pixels: updates from cameras")
    ap.add_argument("--size", type=int, default=84, help="--obs pixels: frame size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.obs == "pixels":
        return pixels(args)
    print(f"device={args.device} threads={args.threads} batch={B} hidden=256 state={S} action={A} "
          f"timed updates={args.updates}")
    rows = []
    for e in args.critics:
        fns: dict = {"sb3": SB3(e, args.device)}
        for prec in args.precision:
            ours = Ours(ResidualConfig(num_critics=e, critic_warmup_updates=0, precision=prec), args.device)
            fns[f"ours {prec}"], fns[f"probe {prec}"] = ours, Probe(ours.learner)
        r = interleaved(fns, args.updates, args.rounds)
        sb3 = float(np.median(r["sb3"]))
        bound = 7 * e / (2 + 4 * e)  # matmul-count ratio SB3 / ours (module docstring)
        for prec in args.precision:
            ours, probe = np.array(r[f"ours {prec}"]), np.array(r[f"probe {prec}"])
            vs_probe = float(np.median(ours / probe))
            vs_sb3 = float(np.median(ours / np.array(r["sb3"])))
            rows.append((e, prec, float(np.median(ours)), float(np.median(probe)), vs_probe, sb3, vs_sb3, bound))
            print(f"critics={e:>2} {prec}: ours {np.median(ours):7.1f} upd/s ({1e3 / np.median(ours):5.1f} ms) | probe "
                  f"{np.median(probe):7.1f} upd/s -> {100 * vs_probe:5.1f}% of probe | SB3 SAC fp32 {sb3:7.1f} upd/s "
                  f"-> {vs_sb3:4.2f}x SB3 (fp32 matmul bound {bound:.2f}x)", flush=True)
    print("\n| critics | precision | ours upd/s | probe upd/s | ours/probe (>=70%) | SB3 SAC fp32 upd/s | ours/SB3 (>=2x) "
          "| fp32 matmul bound |")
    print("|---|---|---|---|---|---|---|---|")
    for e, prec, ours, probe, vs_probe, sb3, vs_sb3, bound in rows:
        print(f"| {e} | {prec} | {ours:.1f} | {probe:.1f} | {100 * vs_probe:.0f}% | {sb3:.1f} | {vs_sb3:.2f}x | {bound:.2f}x |")
    print("(medians over interleaved rounds; ratios are medians of per-round ratios)")


if __name__ == "__main__":
    main()
