"""Sample efficiency of residual RL: base + residual vs RLPD-style from scratch vs the frozen base.

Per task: noisy scripted demos -> a BC base (aimed at 30-70% success) -> for each
seed, three methods on the same demos:
  residual  frozen BC base + residual actor (ResFiT recipe), demos relabelled with the base
  scratch   zero base + full-range actor (configs/rl/rlpd.yaml): RLPD-style, same demos
  base      the frozen BC base alone
Success over `eval_episodes` episodes is measured every `eval_every` env steps.
The RL runs drive the real `Actor` and `Learner` classes in lock-step (exact UTD,
reproducible curves); a separate short async run (actor process + learner)
measures learner updates/s and actor steps/s running concurrently.

Profiles (stated in the output):
  cpu    state obs, rl=cpu (2 critics, UTD 4), 3 seeds, 12k steps on reach and 8k on lift, 2 runs at a time;
         ~50 min on a free 2-core CPU; `--tasks sim/peg_insert sim/peg_pick_insert` add the contact-rich
         tasks (30k steps per run)
  gpu    state obs, rl=resfit (10 critics, UTD 4: the default recipe), 3 seeds, 50k steps; with --obs pixels
         rl.encoder=drq (conv encoders trained through the critic loss), 30k steps
  smoke  a tiny run for development

`--obs pixels` (issue: the learner sees what a robot sees): the tasks with `obs: proprio` (joints, gripper,
TCP: the object only in the cameras), a 64x64 front and a 64x64 wrist camera, 30k env steps per run; an image
BC base (image + proprio); the residual reads [proprio, the base's frozen image features] (`rl.encoder=base`, the CPU path) and the
from-scratch baseline the same features from the same checkpoint (`rl.encoder_checkpoint`). With
`--obs pixels` a run stops once it has held >= 95% for two eval points in a row (`--stop-held`).

Each run keeps its result in <out>/<task>/<method>_s<seed>/result.json: the same command run again after an
interruption reads the finished runs back and runs the rest (the bases are cached in <out> too).

    .venv/bin/python benchmarks/residual_rl.py --profile cpu [--tasks sim/reach sim/lift] [--seeds 3] [--jobs 2]
    .venv/bin/python benchmarks/residual_rl.py --obs pixels --tasks sim/lift sim/pick_place
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from bench_pool import parse_kv, run_jobs
from rl_report import HEADROOM_SCALES, TARGET, plot, report, steps_to  # noqa: F401 (steps_to: real_signals)
from robotlearn.envs import image_shapes, make_env
from robotlearn.policies.registry import base_entry, make_base
from robotlearn.policies.rollout import evaluate
from robotlearn.rl.evaluate import BasePlusResidual
from robotlearn.rl.residual import ResidualConfig, ResidualPolicy
from robotlearn.runtime.actor import Actor, ActorConfig
from robotlearn.runtime.learner import Learner, LearnerConfig
from robotlearn.runtime.messages import weights_version

TASKS = {  # demos + BC sized so the base lands at roughly 30-70% success
    "sim/reach": dict(demo_episodes=30, demo_noise=0.8, bc_steps=500),
    "sim/lift": dict(demo_episodes=30, demo_noise=0.8, bc_steps=1000),
    # millimetre precision (docs/results/peg_insert.md, 50 episodes each, with per-episode expert noise): 100 demos
    # at noise 0.6 gave an 86-94% base, 50 at 0.6 24%, 30 at 0.6 8%, these 50%
    "sim/peg_insert": dict(demo_episodes=100, demo_noise=0.8, bc_steps=3000),
    # grasp, carry, then the same insertion: 100 demos at 0.8 (40% successful) gave a 40% base, at 0.6 (53%) 8%
    "sim/peg_pick_insert": dict(demo_episodes=100, demo_noise=0.8, bc_steps=3000),
}
# rl.KEY=VALUE per task on top of the profile (and under --set / --residual-set): "both" methods, "residual" only.
# peg_pick_insert's critic ignored millimetre aim under mean/std scaling (docs/results/peg_insert.md), and a
# residual on the gripper drops the peg; scratch keeps its gripper (a zero base never closes it). The residual's
# actor_lr 3e-5 took 3/3 seeds from a 24-26% base to >= 90% within 30k steps; 1e-4 took 2/3 from a 38-46% one
TASK_RL = {
    "sim/peg_pick_insert": {"both": ["state_norm=robust"], "residual": ["base_only_dims=[3]", "actor_lr=3e-5"]},
}
# --obs pixels: demos + image BC sized for a 30-70% base from the camera; a lighter encoder and batch than
# configs/policy/bc_mlp.yaml's (32 channels, batch 128: ~0.6 s per BC step on one CPU core at 64x64)
PIXEL_BC = ["batch_size=64", "policy.encoder.image_channels=16", "policy.encoder.image_keypoints=16"]
PIXEL_TASKS = {  # lift at noise 0.8 gave an 8% image base (50 episodes); 0.6 is the pipeline's demo noise
    "sim/lift": dict(demo_episodes=30, demo_noise=0.6, bc_steps=2000),
    "sim/pick_place": dict(demo_episodes=30, demo_noise=0.6, bc_steps=2000),
}
# env kwargs per --obs; the wrist view lifts lift's image base from 2-8% (front alone) to 32%
# (docs/results/residual_rl_pixels.md)
OBS = {"state": {}, "pixels": {"obs": "proprio", "cameras": ["front", "wrist"], "image_size": 64}}
DEFAULT_TASKS = ["sim/reach", "sim/lift"]  # the peg tasks on request (--tasks): their runs are 30k steps each
PROFILES = {
    "cpu": dict(rl="cpu", seeds=3, steps={"sim/reach": 12_000, "sim/lift": 8000, "sim/peg_insert": 30_000,
                                          "sim/peg_pick_insert": 30_000},
                eval_every=2000, eval_episodes=50, rate_updates=1000, pixel_steps=30_000),
    "gpu": dict(rl="resfit", seeds=3, steps={"sim/reach": 50_000, "sim/lift": 50_000, "sim/peg_insert": 50_000,
                                             "sim/peg_pick_insert": 50_000},
                eval_every=5000, eval_episodes=50, rate_updates=2000, pixel_steps=30_000),
    "smoke": dict(rl="pipeline", seeds=1, steps={"sim/reach": 1500, "sim/lift": 1500, "sim/peg_insert": 1500,
                                                 "sim/peg_pick_insert": 1500},
                  eval_every=500, eval_episodes=10, rate_updates=100, pixel_steps=1500),
}


def rl_config(name: str, scratch: bool, sets: list[str] = ()) -> ResidualConfig:
    """configs/rl/<name>.yaml + `sets` (KEY=VALUE, typed and checked like `robotlearn finetune rl.KEY=VALUE`)."""
    import yaml

    import robotlearn.cli.finetune  # noqa: F401 - registers the schemas configs/finetune.yaml composes onto
    from robotlearn.cli.config import compose, to_dataclass
    from robotlearn.envs.registry import config_root

    over = [f"rl.{kv}" for kv in sets]
    cfg = to_dataclass(compose("finetune", [f"rl={name}", *over]).rl, ResidualConfig)
    if scratch:  # the keys configs/rl/rlpd.yaml sets itself, on top of the profile's recipe (`sets` win over both)
        rlpd = to_dataclass(compose("finetune", ["rl=rlpd", *over]).rl, ResidualConfig)
        own = yaml.safe_load((config_root() / "rl" / "rlpd.yaml").read_text()).keys() - {"defaults"}
        cfg = replace(cfg, **{k: getattr(rlpd, k) for k in own})
    return cfg


def task_recipes(name: str, task: str, sets: list[str] = (), residual_sets: list[str] = ()
                 ) -> tuple[ResidualConfig, ResidualConfig]:
    """(residual, scratch) recipes of `task`: configs/rl/<name>.yaml, then TASK_RL's keys for the task, then
    `sets` (both methods) and `residual_sets` (the residual only); later keys win."""
    r = TASK_RL.get(task, {})
    return (rl_config(name, False, [*r.get("both", []), *r.get("residual", []), *sets, *residual_sets]),
            rl_config(name, True, [*r.get("both", []), *sets]))


def make_base_policy(task: str, out: Path, seed: int, env_kwargs: dict | None = None, pixels: bool = False,
                     recipe: dict | None = None) -> Path:
    """Collect noisy demos and train a BC base once per task (cached under out/); the demos hold the observations
    of the env `task` with `env_kwargs`, and with `pixels` the base reads its camera (image + proprio). `recipe`
    overrides fields of the task's entry in TASKS (PIXEL_TASKS with `pixels`)."""
    from robotlearn.cli import collect, train_bc
    from robotlearn.cli.config import load

    t = {**(PIXEL_TASKS if pixels else TASKS)[task], **(recipe or {})}
    d = out / task.replace("/", "_")
    demos, bc = d / "demos.zarr", d / "bc"
    env_over = [f"env.{k}={json.dumps(v)}" for k, v in (env_kwargs or {}).items()]
    collect.main([f"env={task}", *env_over, f"episodes={t['demo_episodes']}", f"noise={t['demo_noise']}",
                  f"seed={seed}", f"out={demos}", "progress=false"])
    if not (bc / "checkpoints" / "last").exists():
        train_bc.run(load("train_bc", [
            f"dataset={demos}", f"env={task}", *env_over, f"steps={t['bc_steps']}", f"seed={seed}",
            f"out_dir={bc}", "eval_every=0", "final_eval_episodes=0", "progress=auto",
            *(PIXEL_BC if pixels else [])], train_bc.TrainBCConfig))
    return d


class Inline:
    """In-process stand-in for a transport's weights slot (lock-step driving only)."""

    latest: bytes | None = None

    def publish_weights(self, payload: bytes) -> None:
        self.latest = payload


def eval_reset_seed(seed: int) -> int:
    """First env reset seed of a run seed's eval episodes: every method of one seed sees the same episodes."""
    return 100_000 + 1000 * seed


def eval_success(task: str, base_spec: str, learner: Learner | None, episodes: int, seed: int,
                 env_kwargs: dict | None = None, features=None) -> float:
    env = make_env(task, **(env_kwargs or {}))
    base = make_base(base_spec, env, seed=seed)  # a fresh base: the actor's chunk state is untouched
    policy = base
    if learner is not None:
        res = ResidualPolicy(learner.learner.state_dim, learner.learner.action_dim, learner.rl,  # as the actor's
                             image_shapes=image_shapes(env.observation_space))
        res.load_weights(learner.learner.actor_weights(), learner.learner.version)
        policy = BasePlusResidual(base, res, features=features)
    r = evaluate(policy, env, episodes, seed=eval_reset_seed(seed))
    env.close()
    return r.success_rate


class OracleResidual:
    """base + clip(expert - base, +-scale): a residual imitating the expert within the bound (headroom probe)."""

    action_chunk_size = 1

    def __init__(self, base, expert, scale: float) -> None:
        from robotlearn.policies.base import ChunkStepper

        self.base, self.expert, self.scale = ChunkStepper(base), ChunkStepper(expert), scale
        self.action_dim = base.action_dim

    def reset(self) -> None:
        self.base.reset()
        self.expert.reset()

    def act(self, obs: dict) -> np.ndarray:
        b, e = self.base.next_action(obs), self.expert.next_action(obs)
        return np.clip(b + np.clip(e - b, -self.scale, self.scale), -1.0, 1.0)[None]  # (1, A)


def headroom(task: str, bc: str, scales: list[float], episodes: int, seed: int = 0,
             env_kwargs: dict | None = None) -> dict[float, float]:
    """Success of the frozen base + the oracle residual at each scale, on run seed `seed`'s eval episodes:
    which residual_scale can fix this base."""
    env = make_env(task, **(env_kwargs or {}))
    out = {}
    for s in scales:
        policy = OracleResidual(make_base(bc, env), make_base("expert", env), s)
        out[s] = evaluate(policy, env, episodes, seed=eval_reset_seed(seed)).success_rate
    env.close()
    return out


def run_rl(task: str, base_spec: str, demos: str, rl: ResidualConfig, steps: int, eval_every: int, episodes: int,
           seed: int, work: Path, env_kwargs: dict | None = None, reward: str = "env", eval_kwargs: dict | None = None,
           stop_held: int = 0) -> dict:
    """Actor and Learner in lock-step: UTD exactly rl.utd; returns the eval curve and timings.

    The actor's env is `task` with `env_kwargs` and the reward source `reward` (robotlearn/rewards/sources.py);
    evaluation runs `task` with `eval_kwargs` and counts the task's own success detector. With `rl.encoder=base`
    the residual reads the frozen image features of the base checkpoint (or of rl.encoder_checkpoint).
    `stop_held` > 0: stop once that many eval points in a row are at >= TARGET.
    """
    import shutil

    from robotlearn.policies.registry import CHECKPOINT, parse_base
    from robotlearn.rewards.sources import with_reward
    from robotlearn.rl.features import frozen_encoder

    shutil.rmtree(work, ignore_errors=True)  # a fresh online log per run
    torch.manual_seed(seed)
    env = with_reward(make_env(task, **(env_kwargs or {})), reward)
    name, arg = parse_base(base_spec)
    features = frozen_encoder(rl, arg if name == CHECKPOINT else None)
    inline = Inline()
    lc = LearnerConfig(out_dir=str(work), resume=False, tensorboard=False, progress=False, seed=seed)
    demo_base = None if base_entry(base_spec).needs_env else make_base(base_spec, env, seed=seed)  # None: recorded
    learner = Learner(inline, rl, lc, env.env_info, env.observation_space, demos, demo_base, features=features)
    actor = Actor(env, make_base(base_spec, env, seed=seed), rl, ActorConfig(seed=seed, pace_hz=0), features)
    learner.publish()
    curve, train_wall, t_target, step_target = [], 0.0, None, None
    while True:
        if actor.steps // eval_every >= len(curve):  # eval points at 0, eval_every, ...
            s = eval_success(task, base_spec, learner, episodes, seed, eval_kwargs, features)
            curve.append((actor.steps, s))
            print(f"    {task} {'scratch' if base_spec == 'zero' else 'residual'} seed {seed}"
                  f"{'' if reward == 'env' and not env_kwargs else f' ({reward} reward, {env_kwargs})'}: "
                  f"step {actor.steps:>6} success {s:.0%} ({train_wall:.0f}s training wall)", flush=True)
            if s >= TARGET and t_target is None:
                t_target, step_target = train_wall, actor.steps
        if actor.steps >= steps or (stop_held and len(curve) >= stop_held
                                    and all(v >= TARGET for _, v in curve[-stop_held:])):
            break
        t = time.perf_counter()
        if inline.latest is not None and weights_version(inline.latest) > actor.policy.version:
            actor.load_weights(inline.latest)
        payload = actor.step()
        if payload is not None:
            learner.ingest([payload])
            learner.train(max_updates=1 << 30)  # everything owed: UTD x the episode's steps
        train_wall += time.perf_counter() - t
    learner.close()
    env.close()
    return {"curve": curve, "train_wall_s": train_wall, "updates": learner.learner.num_updates,
            "wall_to_target_s": t_target, "steps_to_target": step_target}


def async_rates(task: str, base_spec: str, demos: str, rl: ResidualConfig, updates: int, work: Path,
                env_kwargs: dict | None = None) -> dict:
    """Learner updates/s and actor steps/s with an actor process and the learner running together.

    The actor is paced at 0.8 x the learner's measured rate / UTD (as `finetune match_learner=0.8`): an
    unpaced sim actor would outrun any learner and the run would measure episode logging, not learning.
    """
    from robotlearn.runtime.learner import measure_update_rate
    from robotlearn.runtime.local import run_local
    from robotlearn.runtime.spec import RunSpec

    from robotlearn.envs.registry import env_config
    from robotlearn.rl.features import frozen_encoder

    env = make_env(task, **(env_kwargs or {}))
    features = frozen_encoder(rl, base_spec)
    ups = measure_update_rate(rl, env.observation_space["state"].shape[0] + (features.dim if features else 0),
                              env.action_space.shape[0], image_shapes=image_shapes(env.observation_space))
    env.close()
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    lc = LearnerConfig(out_dir=str(work), resume=False, tensorboard=False, progress=False, max_updates=updates,
                       min_online_steps=256)
    ac = ActorConfig(pace_hz=0.8 * ups / rl.utd)
    r = run_local(RunSpec(env={**env_config(task), **env_kwargs} if env_kwargs else task, base=base_spec, rl=replace(rl, critic_warmup_updates=0), learner=lc, actor=ac,
                          demos=demos))
    actor = next(iter(r["heartbeats"].values()))[1] if r["heartbeats"] else {}
    return {"learner_updates_per_s": r["learner_updates_per_s"], "actor_steps_per_s": actor.get("steps_per_s", 0.0),
            "actor_pace_hz": ac.pace_hz, "learner_alone_updates_per_s": ups}


def _build(task: str, out: Path, seed: int, env_kwargs: dict | None, pixels: bool, recipe: dict | None,
           threads: int) -> Path:
    """One unit of work for the process pool: demos + BC base of one task."""
    torch.set_num_threads(threads)
    return make_base_policy(task, out, seed, env_kwargs, pixels, recipe)


def _job(kind: str, task: str, seed: int, base: str, demos: str, rl: ResidualConfig, steps: int, eval_every: int,
         episodes: int, work: str, threads: int, env_kwargs: dict | None = None, stop_held: int = 0):
    """One unit of work for the process pool: a frozen-base eval or one RL run. Its result is kept in
    work/result.json with the job's arguments, and the same job run again (an interrupted benchmark restarted
    with the same command) reads it back instead of running."""
    torch.set_num_threads(threads)
    job = json.loads(json.dumps([kind, task, seed, base, demos, asdict(rl), steps, eval_every, episodes, env_kwargs,
                                 stop_held]))  # JSON's view of the arguments, as read back
    done = Path(work) / "result.json"
    if done.exists():
        saved = json.loads(done.read_text())
        if saved.get("job") == job:
            print(f"  {task} {Path(work).name}: done before, read back from {done}", flush=True)
            return saved["result"]
    if kind == "base":
        result = eval_success(task, base, None, episodes, seed, env_kwargs)
        print(f"  {task} frozen BC base seed {seed}: {result:.0%}", flush=True)
        Path(work).mkdir(parents=True, exist_ok=True)
    else:
        result = run_rl(task, base, demos, rl, steps, eval_every, episodes, seed, Path(work), env_kwargs,
                        eval_kwargs=env_kwargs, stop_held=stop_held)
    done.write_text(json.dumps({"job": job, "result": result}))
    return json.loads(json.dumps(result))  # as a rerun reads it (tuples become lists)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    ap.add_argument("--tasks", nargs="+", default=None, choices=sorted({*TASKS, *PIXEL_TASKS}),
                    help=f"default {' '.join(DEFAULT_TASKS)} (--obs pixels: {' '.join(PIXEL_TASKS)})")
    ap.add_argument("--obs", choices=sorted(OBS), default="state",
                    help="state: each task's default (privileged) state; pixels: obs=proprio + 64x64 front and "
                         "wrist cameras, rl.encoder=base")
    ap.add_argument("--stop-held", type=int, default=None,
                    help="stop a run once this many eval points in a row are >= 95%% (0 = never; default 2 with "
                         "--obs pixels, else 0)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="env steps per run (default: the profile's per task)")
    ap.add_argument("--eval-episodes", type=int, default=None)
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--out", default="runs/bench_residual_rl")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (processes); 1 = one after another")
    ap.add_argument("--base", nargs="*", default=[], metavar="KEY=VALUE",
                    help=f"base recipe fields on top of the task's ({', '.join(TASKS['sim/reach'])}), "
                         "e.g. demo_episodes=50 demo_noise=0.6; use a new --out: bases are cached there")
    ap.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE",
                    help="env kwargs for demos, training and eval (JSON values), e.g. clearance=0.001")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="recipe fields for both methods on top of the profile, e.g. num_critics=10 utd=2")
    ap.add_argument("--residual-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="rl.KEY=VALUE for the residual's recipe only (after --set), e.g. residual_scale=0.1")
    ap.add_argument("--methods", nargs="+", default=["residual", "scratch"], choices=["residual", "scratch"],
                    help="the RL runs to make (the frozen base is always evaluated)")
    ap.add_argument("--report", action="store_true",
                    help="only print the tables and redraw the plot from --out's results.json (no runs)")
    ap.add_argument("--from-log", default=None, metavar="LOG",
                    help="with --report: the tables and plot from this run's printed log (a run stopped before "
                         "it wrote results.json; the plot goes beside the log)")
    ap.add_argument("--rates-only", action="store_true",
                    help="re-measure only the concurrent async rates, reusing --out's bases and results.json")
    args = ap.parse_args()
    pixels = args.obs == "pixels"
    tasks = args.tasks or (list(PIXEL_TASKS) if pixels else DEFAULT_TASKS)
    if pixels and set(tasks) - set(PIXEL_TASKS):
        ap.error(f"--obs pixels runs {sorted(PIXEL_TASKS)}, not {sorted(set(tasks) - set(PIXEL_TASKS))}")
    if not pixels and set(tasks) - set(TASKS):
        ap.error(f"--obs state runs {sorted(TASKS)}, not {sorted(set(tasks) - set(TASKS))}")
    recipe = parse_kv(args.base, "--base", allowed=TASKS["sim/reach"])
    env_kwargs = {**OBS[args.obs], **parse_kv(args.env, "--env")}
    stop_held = args.stop_held if args.stop_held is not None else (2 if pixels else 0)
    torch.set_num_threads(args.threads)
    p = PROFILES[args.profile]
    seeds = args.seeds or p["seeds"]
    episodes = args.eval_episodes or p["eval_episodes"]
    eval_every = args.eval_every or p["eval_every"]
    steps_of = {t: args.steps or (p["pixel_steps"] if pixels else p["steps"][t]) for t in tasks}  # env steps per run
    out = Path(args.out) / (args.profile + ("_pixels" if pixels else ""))
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # pixels: frozen base features on CPU profiles; the GPU profile trains DrQ encoders through the critic
    pixel_encoder = "drq" if args.profile == "gpu" else "base"
    sets = [*([f"encoder={pixel_encoder}"] if pixels and not any(kv.startswith("encoder=") for kv in args.set) else []),
            *args.set]
    rl_res = rl_config(p["rl"], False, [*sets, *args.residual_set])  # the profile's recipe, for the header
    task_rl = {t: TASK_RL.get(t, {}) for t in tasks}
    rl_of = {t: task_recipes(p["rl"], t, sets, args.residual_set) for t in tasks}
    obs_desc = "state" if not pixels else (f"pixels ({', '.join(f'{k}={v}' for k, v in OBS[args.obs].items())}, "
                                           f"rl.encoder={rl_res.encoder}, stop after {stop_held} evals >= 95%)")
    if args.env:
        obs_desc += f" --env {' '.join(args.env)}"
    if args.base:
        obs_desc += f" --base {' '.join(args.base)}"
    header = (f"profile={args.profile} device={device} threads={args.threads} jobs={args.jobs} obs={obs_desc} "
              f"rl=configs/rl/{p['rl']}.yaml (critics={rl_res.num_critics}, utd={rl_res.utd}, "
              f"hidden={rl_res.hidden_dim}, batch={rl_res.batch_size}, residual_scale={rl_res.residual_scale}) "
              f"--set {' '.join(sets) or '-'} "
              + "".join(f"{t} recipe: both {' '.join(r.get('both', [])) or '-'}, residual "
                        f"{' '.join(r.get('residual', [])) or '-'}; " for t, r in task_rl.items() if r)
              + (f"--residual-set {' '.join(args.residual_set)} " if args.residual_set else "")
              + (f"--methods {' '.join(args.methods)} " if args.methods != ["residual", "scratch"] else "") +
              f"seeds={seeds} eval_episodes={episodes} "
              f"eval_every={eval_every} steps={steps_of} target={TARGET:.0%}")
    if args.report and args.from_log:
        from rl_report import results_from_log

        log = Path(args.from_log)
        saved_header, results, room = results_from_log(log.read_text())
        if not results:
            raise SystemExit(f"{log}: no task with eval points for both methods")
        plot(results, log.with_suffix(".png"), saved_header)
        report(results, {}, room, saved_header, float("nan"))
        print(f"plot: {log.with_suffix('.png')}")
        return
    if args.report:
        saved = json.loads((out / "results.json").read_text())
        room = {t: {float(k): v for k, v in r.items()} for t, r in saved["headroom"].items()}
        plot(saved["results"], out / "residual_rl.png", saved["header"])
        report(saved["results"], saved.get("rates", {}), room, saved["header"], float("nan"))
        print(f"plot: {out / 'residual_rl.png'}  data: {out / 'results.json'}")
        return
    print(header, flush=True)
    t0 = time.time()
    # demos + BC per task, one process per task (each writes only its own out/<task>/), before any RL run starts
    bases = run_jobs({(task, "build", 0): (task, out, 0, env_kwargs, pixels, recipe, args.threads) for task in tasks},
                     min(args.jobs, len(tasks)), _build)
    bases = {task: d for (task, _, _), d in bases.items()}
    rates: dict = {}
    room = {}
    for task in tasks:
        room[task] = headroom(task, str(bases[task] / "bc" / "checkpoints" / "last"), HEADROOM_SCALES, episodes,
                              env_kwargs=env_kwargs)
        print(f"  {task} headroom (base + oracle residual clip(expert - base, +-scale)): "
              + ", ".join(f"scale {k:g}: {v:.0%}" for k, v in room[task].items()), flush=True)
    if args.rates_only:
        results = json.loads((out / "results.json").read_text())["results"]
    else:
        jobs: dict[tuple[str, str, int], tuple] = {}
        for task in tasks:
            d, steps = bases[task], steps_of[task]
            bc, demos = str(d / "bc" / "checkpoints" / "last"), str(d / "demos.zarr")
            # the baseline reads the same frozen features, from the base's checkpoint (rl.encoder=base)
            res, scr = rl_of[task]
            scr = replace(scr, encoder_checkpoint=bc) if scr.encoder == "base" else scr
            for seed in range(seeds):
                if "residual" in args.methods:
                    jobs[(task, "residual", seed)] = ("rl", task, seed, bc, demos, res, steps, eval_every,
                                                      episodes, str(d / f"residual_s{seed}"), args.threads, env_kwargs,
                                                      stop_held)
                if "scratch" in args.methods:
                    jobs[(task, "scratch", seed)] = ("rl", task, seed, "zero", demos, scr, steps, eval_every, episodes,
                                                     str(d / f"scratch_s{seed}"), args.threads, env_kwargs, stop_held)
                jobs[(task, "base", seed)] = ("base", task, seed, bc, demos, res, 0, 0, episodes,
                                              str(d / f"base_s{seed}"), args.threads,
                                              env_kwargs)
        # longest first (RL runs, then base evals) so the pool drains evenly; the residual's seeds before scratch's
        order = {"residual": 0, "scratch": 1, "base": 2}
        done = run_jobs(dict(sorted(jobs.items(), key=lambda kv: order[kv[0][1]])), args.jobs, _job)
        results = {task: {m: [done[(task, m, s)] for s in range(seeds)] for m in ("base", *args.methods)}
                   for task in tasks}
        (out / "results.json").write_text(json.dumps({"header": header, "results": results, "headroom": room}, indent=1))
    for task in tasks:  # alone on the machine: the actor and learner processes need both cores
        d = bases[task]
        rates[task] = async_rates(task, str(d / "bc" / "checkpoints" / "last"), str(d / "demos.zarr"),
                                  rl_of[task][0], p["rate_updates"], d / "rates", env_kwargs)
    (out / "results.json").write_text(json.dumps({"header": header, "results": results, "rates": rates,
                                                  "headroom": room}, indent=1))
    plot(results, out / "residual_rl.png", header)
    report(results, rates, room, header, time.time() - t0)
    print(f"plot: {out / 'residual_rl.png'}  data: {out / 'results.json'}")


if __name__ == "__main__":
    main()
