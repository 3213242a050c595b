"""Ray scaling: aggregate env steps/s and learner updates/s for 1, 2, 4 actors, Ray vs the local runtime.

Each run is a real residual fine-tune (the shared run_actor / run_learner loops,
zarr logging; by default the recipe's learner: 10 LayerNorm critics, hidden 256,
batch 256, UTD 4) with unpaced actors (as fast as the CPU allows; --pace-hz to pace), stopped after
`--seconds`. Rates are steady-state: taken from the learner's own TensorBoard
scalars (wall time, env steps ingested, weights version) between the first log
after learning starts and the last one, so worker start-up is not counted.
Also prints the real message sizes that go over the wire (docs/scaling.md) and
the cost of the Ray transport's actor-side calls.

    .venv/bin/python benchmarks/ray_scaling.py                          # local + ray, 1 2 4 actors
    .venv/bin/python benchmarks/ray_scaling.py --critics 2 --seconds 30  # the rl=cpu learner size
    .venv/bin/python benchmarks/ray_scaling.py --critics 2 --pace-hz 50  # actors at a control rate
    .venv/bin/python benchmarks/ray_scaling.py --runtimes ray --actors 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402

from robotlearn.envs import make_env  # noqa: E402
from robotlearn.rl.residual import ResidualConfig, ResidualLearner  # noqa: E402
from robotlearn.runtime.actor import ActorConfig, EpisodeRecorder  # noqa: E402
from robotlearn.runtime.learner import LearnerConfig  # noqa: E402
from robotlearn.runtime.messages import Episode, decode_weights, encode_weights  # noqa: E402
from robotlearn.runtime.spec import RunSpec  # noqa: E402


def steady_rates(tb_dir: Path, publish_every: int) -> dict[str, float]:
    """env steps/s and updates/s from the learner's scalars: (wall, step=env_steps, version) per log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    ev = [e for e in acc.Scalars("learner/version") if e.value >= 2] if "learner/version" in tags else []
    # version 1 = the initial publish; from version 2 on the learner is updating
    if len(ev) < 2:
        return {"env_steps_per_s": float("nan"), "updates_per_s": float("nan"), "window_s": 0.0}
    dt = ev[-1].wall_time - ev[0].wall_time
    return {"env_steps_per_s": (ev[-1].step - ev[0].step) / dt,
            "updates_per_s": (ev[-1].value - ev[0].value) * publish_every / dt, "window_s": dt}


def message_sizes(env_name: str, rl: ResidualConfig) -> tuple[dict[str, int], bytes, bytes]:
    """Bytes of one real episode message (zero actions) and one real weights message."""
    env = make_env(env_name)
    obs, _ = env.reset(seed=0)
    rec, done = EpisodeRecorder(), False
    a = np.zeros(env.action_space.shape, np.float32)
    while not done:
        nxt, r, term, trunc, info = env.step(a)
        rec.add(obs, a, a, r, False)
        obs, done = nxt, term or trunc
    episode = Episode(rec.arrays(), success=False, terminated=bool(term), policy_version=1, policy_version_start=1,
                      actor_id="actor-0", start_time=0.0, end_time=1.0, warmup=False).encode()
    S, A = env.observation_space["state"].shape[0], env.action_space.shape[0]
    learner = ResidualLearner(S, A, rl, device="cpu")
    weights = encode_weights(1, learner.actor_weights(), num_updates=0)
    env.close()
    sizes = {"episode_bytes": len(episode), "episode_steps": len(rec), "weights_bytes": len(weights),
             "weights_params": int(sum(p.numel() for p in learner.actor.parameters()))}
    return sizes, episode, weights


def transport_micro(episode: bytes, weights: bytes, n: int = 500) -> dict[str, float]:
    """Cost of the Ray transport calls an actor makes, and publish -> actor-sees latency (local Ray)."""
    import ray

    from robotlearn.runtime.ray_transport import (
        RayActorTransport,
        RayLearnerTransport,
        make_hub,
    )

    ray.init(num_cpus=2, _temp_dir="/tmp/rl-ray-bench", include_dashboard=False, log_to_driver=False)
    try:
        hub = make_hub()
        actor, learner = RayActorTransport(hub, "bench"), RayLearnerTransport(hub)
        spent = 0.0
        for _ in range(n):  # as the actor loop calls it once per env step (here 1 kHz), default poll_s
            t = time.perf_counter()
            actor.poll_weights()
            spent += time.perf_counter() - t
            time.sleep(0.001)
        poll_us = spent / n * 1e6
        t = time.perf_counter()
        for _ in range(n):
            actor.send_episode(episode)
        actor.close()
        send_us = (time.perf_counter() - t) / n * 1e6
        got = sum(len(learner.recv_episodes(0.5)) for _ in range(3))
        lat = []
        _, tensors, _ = decode_weights(weights)
        for v in range(1, 21):
            payload = encode_weights(v, tensors)  # each publication carries a newer version in its header
            t = time.perf_counter()
            learner.publish_weights(payload)
            while actor.poll_weights() is None:
                pass
            lat.append((time.perf_counter() - t) * 1e3)
        return {"poll_us": poll_us, "send_us": send_us, "delivered": got, "sent": n,
                "publish_to_actor_ms": float(np.median(lat))}
    finally:
        ray.shutdown()


def one_run(runtime: str, n: int, args, rl: ResidualConfig, out: Path) -> dict[str, float]:
    """One fine-tune of `args.seconds` wall seconds (start-up included; rates exclude it)."""
    run_dir = out / f"{runtime}-{n}"
    shutil.rmtree(run_dir, ignore_errors=True)
    lc = LearnerConfig(out_dir=str(run_dir), publish_every=args.publish_every, min_online_steps=500, log_every=10,
                       checkpoint_every=10**9, progress=False)
    ac = ActorConfig(pace_hz=args.pace_hz, heartbeat_s=1.0)
    t0 = time.time()
    if runtime == "local":
        result = _run_local_for(args.env, n, rl, lc, ac, args.seconds)
    else:
        from robotlearn.runtime.ray_runtime import RayRun, RayRuntimeConfig

        rt = RayRuntimeConfig(num_actors=n, actor_cpus=1.0, learner_cpus=1.0, temp_dir="/tmp/rl-ray-bench")
        run = RayRun(RunSpec(env=args.env, rl=rl, learner=lc, actor=ac, runtime=rt)).start()
        try:
            time.sleep(max(0.0, args.seconds - (time.time() - t0)))
            run.request_stop()
            result = run.wait(timeout=120, progress=False)
        finally:
            run.shutdown()
    rates = steady_rates(run_dir / "tb", args.publish_every)
    hub = result.get("hub", {}).get("received", {})
    return {**rates, "wall_s": time.time() - t0, "updates": result["updates"], "env_steps": result["env_steps"],
            "run_env_steps_per_s": result["env_steps_per_s"], "run_updates_per_s": result["learner_updates_per_s"],
            "bytes_per_step": sum(c["bytes"] for c in hub.values()) / max(sum(c["rows"] for c in hub.values()), 1)
            if hub else float("nan")}


def _run_local_for(env_name: str, n: int, rl, lc, ac, seconds: float) -> dict:
    """The local runtime's own parts (what run_local wires up), stopped after `seconds` instead of a budget."""
    import multiprocessing as mp
    import threading

    from robotlearn.runtime.assembly import build_learner
    from robotlearn.runtime.local import local_transports, spawn_actor
    from robotlearn.runtime.spec import LocalRuntimeConfig

    spec = RunSpec(env=env_name, rl=rl, learner=lc, actor=ac, runtime=LocalRuntimeConfig(num_actors=n))
    ctx = mp.get_context("spawn")
    learner_t, actor_ts = local_transports(spec, ctx)
    stop = ctx.Event()
    procs = [spawn_actor(ctx, t, spec, i, stop) for i, t in enumerate(actor_ts)]
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    try:
        return build_learner(spec).run(learner_t, stop)
    finally:
        stop.set()
        timer.cancel()
        for p in procs:
            p.join(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="sim/lift")
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--runtimes", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    p.add_argument("--pace-hz", type=float, default=0.0, help="steps/s per actor (0 = unpaced, as fast as it goes)")
    p.add_argument("--seconds", type=float, default=40.0, help="wall seconds per run, start-up included")
    p.add_argument("--critics", type=int, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--publish-every", type=int, default=10, help="finer than the recipe's 50: more rate samples")
    p.add_argument("--out", default="/tmp/robotlearn-ray-scaling")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)  # the local learner runs in this process: same 1 thread as the Ray learner
    rl = ResidualConfig(num_critics=args.critics, hidden_dim=args.hidden, critic_warmup_updates=200)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count()
    print(f"machine: {cores} CPU cores (os.cpu_count), load avg {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}, cuda={torch.cuda.is_available()}")
    print(f"env {args.env}, base zero, {args.critics} critics x hidden {args.hidden}, batch {rl.batch_size}, "
          f"UTD {rl.utd}, {args.seconds:.0f} s per run, actors "
          f"{'unpaced' if args.pace_hz <= 0 else f'paced at {args.pace_hz:g} steps/s each'}")
    sizes, episode, weights = message_sizes(args.env, rl)
    print(f"messages: episode {sizes['episode_bytes']} B for {sizes['episode_steps']} steps "
          f"({sizes['episode_bytes'] / sizes['episode_steps']:.0f} B/step); weights {sizes['weights_bytes']} B "
          f"({sizes['weights_params']} actor params) per version, every {args.publish_every} updates")

    micro = {}
    if "ray" in args.runtimes:
        micro = transport_micro(episode, weights)
        print(f"ray transport (driver as actor): poll_weights {micro['poll_us']:.0f} us/call at 1 kHz, send_episode "
              f"{micro['send_us']:.0f} us/episode ({micro['delivered']}/{micro['sent']} delivered), "
              f"publish -> actor sees new version {micro['publish_to_actor_ms']:.1f} ms (median of 20)")

    rows = []
    print(f"\n{'':15}{'---- steady state ----':>34}{'-- whole learner run --':>26}")
    print(f"{'runtime':<8}{'actors':>7}{'env steps/s':>13}{'updates/s':>11}{'window s':>10}"
          f"{'env steps/s':>13}{'updates/s':>11}{'wall s':>8}{'B/step':>8}")
    for runtime in args.runtimes:
        for n in args.actors:
            r = one_run(runtime, n, args, rl, out)
            rows.append({"runtime": runtime, "actors": n, **r})
            print(f"{runtime:<8}{n:>7}{r['env_steps_per_s']:>13.0f}{r['updates_per_s']:>11.1f}{r['window_s']:>10.1f}"
                  f"{r['run_env_steps_per_s']:>13.0f}{r['run_updates_per_s']:>11.1f}"
                  f"{r['wall_s']:>8.1f}{r['bytes_per_step']:>8.0f}", flush=True)
    (out / "results.json").write_text(json.dumps({"cores": cores, "sizes": sizes, "transport": micro, "runs": rows}, indent=1))
    _plot(rows, out / "ray_scaling.png", cores)
    print(f"\nresults: {out / 'results.json'}, plot: {out / 'ray_scaling.png'}")


def _plot(rows: list[dict], path: Path, cores: int | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax, label in [("env_steps_per_s", axes[0], "env steps/s"), ("updates_per_s", axes[1], "learner updates/s")]:
        for runtime in sorted({r["runtime"] for r in rows}):
            rs = [r for r in rows if r["runtime"] == runtime]
            ax.plot([r["actors"] for r in rs], [r[key] for r in rs], "o-", label=runtime)
        ax.set_xlabel("actors")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"robotlearn actor-learner scaling on {cores} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
