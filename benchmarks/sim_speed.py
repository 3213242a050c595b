"""Env steps/s for each sim task (state-only and with one 84x84 camera) vs raw mujoco.mj_step.

One env step = one control period = 25 x 2 ms of physics. The raw baseline
replays the very same episodes (same start states, same actuator controls) with
bare `mj_step(model, data, nstep=25)` on the same compiled model, so
`overhead` = raw / env is exactly what the interface costs on top of physics:
IK, action validation, observation assembly, success check.

    python benchmarks/sim_speed.py [--steps 2000] [--camera-steps 200] [--policy expert|random] [--clock wall|cpu]
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
FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS
clock = time.perf_counter  # --clock cpu: time.process_time (this process only; for a busy shared machine)


def get_state(env) -> np.ndarray:
    s = np.empty(mujoco.mj_stateSize(env.model, FULL))
    mujoco.mj_getState(env.model, env.data, s, FULL)
    return s


def run_env(name: str, steps: int, cameras: list[str], policy: str):
    """Time env.step/reset only (not the policy); return steps/s and the episodes as (start state, controls)."""
    env = make_env(name, cameras=cameras, image_size=84)
    rng = np.random.default_rng(0)
    expert = env.make_expert(noise=0.3, seed=0) if policy == "expert" else None
    obs, _ = env.reset(seed=0)
    episodes = [(get_state(env), [])]
    ep, dt = 0, 0.0
    for _ in range(steps):
        a = expert.act(obs)[0] if expert else rng.uniform(-1, 1, 4).astype(np.float32)
        t0 = clock()
        obs, _, term, trunc, _ = env.step(a)
        dt += clock() - t0
        episodes[-1][1].append(env.data.ctrl.copy())
        if term or trunc:
            ep += 1
            t0 = clock()
            obs, _ = env.reset(seed=ep)
            dt += clock() - t0
            episodes.append((get_state(env), []))
    env.close()
    return steps / dt, episodes


def run_raw(name: str, episodes) -> float:
    """Replay the recorded episodes with bare mj_step: control steps/s."""
    env = make_env(name)
    m, d, n = env.model, mujoco.MjData(env.model), env.n_substeps
    steps, dt = 0, 0.0
    for state, ctrls in episodes:
        mujoco.mj_setState(m, d, state, FULL)
        t0 = clock()
        for c in ctrls:
            d.ctrl[:] = c
            mujoco.mj_step(m, d, nstep=n)
        dt += clock() - t0
        steps += len(ctrls)
    env.close()
    return steps / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--camera-steps", type=int, default=200)
    p.add_argument("--policy", choices=["random", "expert"], default="expert",
                   help="actions: the scripted expert at noise 0.3 (grasps, contacts) or uniform random")
    p.add_argument("--tasks", nargs="*", default=TASKS)
    p.add_argument("--repeats", type=int, default=3, help="best of N runs (the machine may be shared)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: process CPU time, ignores time other processes hold the cores (counts GL threads)")
    args = p.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"{'task':<16}{'env st/s':>10}{'+84x84 cam':>12}{'raw mj_step':>13}{'raw/env':>9}")
    for name in args.tasks:
        state = raw = cam = 0.0
        for _ in range(args.repeats):  # interleaved, best of N: fair when others share the CPU
            s, episodes = run_env(name, args.steps, [], args.policy)
            state, raw = max(state, s), max(raw, run_raw(name, episodes))
            cam = max(cam, run_env(name, args.camera_steps, ["front"], args.policy)[0])
        print(f"{name:<16}{state:>10.0f}{cam:>12.0f}{raw:>13.0f}{raw / state:>8.2f}x")
    print(f"control steps/s (1 step = 25 x 2 ms mj_step; raw replays the same episodes' controls); "
          f"policy={args.policy}, policy time excluded, best of {args.repeats}, {args.clock} clock")


if __name__ == "__main__":
    main()
