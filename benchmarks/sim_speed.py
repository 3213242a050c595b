"""Env steps/s for each sim task (state-only and with one 84x84 camera) vs raw mujoco.mj_step.

One env step = one control period = 25 x 2 ms of physics, so the raw baseline is
`mj_step(model, data, nstep=25)` on the same compiled model from the same reset
state; `overhead` = raw / env is what the interface (IK, action validation,
observation assembly, success check) costs on top of physics.

    MUJOCO_GL=egl python benchmarks/sim_speed.py [--steps 2000] [--camera-steps 200]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")  # read once, when mujoco is first imported
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robotlearn.envs import make_env  # noqa: E402

TASKS = ["sim/reach", "sim/lift", "sim/pick_place"]


def env_steps_per_s(name: str, steps: int, cameras: list[str], policy: str) -> float:
    env = make_env(name, cameras=cameras, image_size=84)
    rng = np.random.default_rng(0)
    expert = env.make_expert(noise=0.3, seed=0) if policy == "expert" else None
    obs, _ = env.reset(seed=0)
    ep, dt = 0, 0.0
    for _ in range(steps):
        a = expert.act(obs)[0] if expert else rng.uniform(-1, 1, 4).astype(np.float32)
        t0 = time.perf_counter()  # time the env only, not the policy
        obs, _, term, trunc, _ = env.step(a)
        if term or trunc:
            ep += 1
            obs, _ = env.reset(seed=ep)
        dt += time.perf_counter() - t0
    env.close()
    return steps / dt


def raw_control_steps_per_s(name: str, steps: int) -> float:
    env = make_env(name)
    env.reset(seed=0)
    m, d = env.model, env.data
    t0 = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(m, d, nstep=env.n_substeps)
    dt = time.perf_counter() - t0
    env.close()
    return steps / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--camera-steps", type=int, default=200)
    p.add_argument("--policy", choices=["random", "expert"], default="expert",
                   help="actions: the noisy scripted expert (realistic contacts) or uniform random")
    p.add_argument("--tasks", nargs="*", default=TASKS)
    args = p.parse_args()
    print(f"{'task':<16}{'env st/s':>10}{'+84x84 cam':>12}{'raw mj_step':>13}{'raw/env':>9}   (control steps/s, 25 x 2 ms each)")
    for name in args.tasks:
        raw = raw_control_steps_per_s(name, args.steps)
        state = env_steps_per_s(name, args.steps, [], args.policy)
        cam = env_steps_per_s(name, args.camera_steps, ["front"], args.policy)
        print(f"{name:<16}{state:>10.0f}{cam:>12.0f}{raw:>13.0f}{raw / state:>9.2f}x")
    print(f"raw mj_step substeps/s = control steps/s x 25; actions from policy={args.policy} (not timed)")


if __name__ == "__main__":
    main()
