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

    .venv/bin/python benchmarks/learner_speed.py [--updates 200] [--rounds 5] [--threads 2]
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
    """ResidualLearner.update() on a host numpy batch."""

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=200, help="timed updates per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--critics", type=int, nargs="+", default=[10, 2])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (robust to shared CPUs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"device={args.device} threads={args.threads} batch={B} hidden=256 state={S} action={A} "
          f"timed updates={args.updates}")
    rows = []
    for e in args.critics:
        ours = Ours(ResidualConfig(num_critics=e, critic_warmup_updates=0), args.device)
        r = interleaved({"ours": ours, "probe": Probe(ours.learner), "sb3": SB3(e, args.device)}, args.updates, args.rounds)
        med = {k: float(np.median(v)) for k, v in r.items()}
        vs_probe = float(np.median(np.array(r["ours"]) / np.array(r["probe"])))
        vs_sb3 = float(np.median(np.array(r["ours"]) / np.array(r["sb3"])))
        rows.append((e, med["ours"], med["probe"], vs_probe, med["sb3"], vs_sb3))
        print(f"critics={e:>2}: ours {med['ours']:7.1f} upd/s ({1e3 / med['ours']:5.1f} ms) | probe {med['probe']:7.1f} "
              f"upd/s -> {100 * vs_probe:5.1f}% of probe | SB3 SAC {med['sb3']:7.1f} upd/s -> {vs_sb3:4.2f}x SB3", flush=True)
    print("\n| critics | ours upd/s | probe upd/s | ours/probe (>=70%) | SB3 SAC upd/s | ours/SB3 (>=2x) |")
    print("|---|---|---|---|---|---|")
    for e, ours, probe, vs_probe, sb3, vs_sb3 in rows:
        print(f"| {e} | {ours:.1f} | {probe:.1f} | {100 * vs_probe:.0f}% | {sb3:.1f} | {vs_sb3:.2f}x |")
    print("(medians over interleaved rounds; ratios are medians of per-round ratios)")


if __name__ == "__main__":
    main()
