"""Try the hardware path without hardware: MuJoCo robot node + actor node + learner node over ROS 2.

    python -m hw_drivers.dry_run --steps 2000

Starts the three nodes as separate processes on a private DDS domain with
localhost-only discovery (exactly what `ros2 launch robotlearn mujoco_dry_run.launch.py`
starts), fine-tunes for `--steps` robot steps at the robot's control rate, then stops
the learner cleanly and prints what happened. Logs, the learner's checkpoint and the
zarr episode log are under `--out`.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Optional

import yaml

from hw_drivers.config import to_dict
from hw_drivers.processes import Watcher, start, stop, wait_until
from hw_drivers.ros2_env import Ros2RobotEnv, resolve_params
from hw_drivers.ros_runtime import strip_ros_args
from robotlearn.config import ConfigError
from robotlearn.envs import find_config
from robotlearn.runtime.spec import load_spec


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="ros2/finetune_panda_sim.yaml",
                    help="finetune YAML (a path, or one in the config directories)")
    ap.add_argument("--steps", type=int, default=2000, help="robot steps to fine-tune for")
    ap.add_argument("--out", default="", help="run folder (default runs/ros2_dry_run/<time>)")
    ap.add_argument("--domain-id", type=int, default=-1, help="ROS_DOMAIN_ID (default: a random free-ish one)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a finetune key")
    ap.add_argument("--check", action="store_true",
                    help="load the run spec and the robot description, print where they came from, start nothing")
    args = ap.parse_args(strip_ros_args(argv))

    from robotlearn.progress import progress_bar

    domain = args.domain_id if args.domain_id >= 0 else random.randint(1, 100)
    try:
        spec = load_spec(args.params, args.set)
    except ConfigError as e:
        raise SystemExit(f"error: {e}") from None
    env = {k: v for k, v in spec.env.items() if k != "_target_"}
    robot = Ros2RobotEnv.robot_params(**{**env, "overrides": {**env.get("overrides", {}), "dds.domain_id": domain,
                                                              "dds.localhost_only": True}})
    if args.check:
        where = Path(args.params).resolve() if Path(args.params).is_file() else find_config(args.params)
        print(json.dumps({"params": str(where), "robot": robot.robot.name,
                          "robot_params": str(resolve_params(env.get("params", ""))), "task": robot.sim.task,
                          "control_hz": robot.robot.control_hz, "steps": args.steps}), flush=True)
        return 0
    out = Path(args.out or f"runs/ros2_dry_run/{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    robot_path = out / "robot_params.yaml"  # the effective robot description, kept with the run
    robot_path.write_text(yaml.safe_dump(to_dict(robot), sort_keys=False))
    sets = [a for s in [*args.set, f"env.params={robot_path}", "env.overrides={}"] for a in ("--set", s)]
    learner_sets = sets + ["--set", f"learner.out_dir={out / 'learner'}"]
    actor_sets = sets + ["--set", f"actor.max_env_steps={args.steps}"]
    print(f"dry run: domain {domain}, robot {robot.robot.name} serving {robot.sim.task} at "
          f"{robot.robot.control_hz:g} Hz, {args.steps} steps, out {out}", flush=True)

    watcher = Watcher(domain, robot.robot.status_topic, spec.runtime.namespace)
    procs = {}
    try:
        procs["robot"] = start("mujoco_robot_node", ["--params", str(robot_path)], domain, out / "robot.log")
        procs["learner"] = start("learner_node", ["--params", args.params, *learner_sets], domain, out / "learner.log")
        procs["actor"] = start("actor_node", ["--params", args.params, *actor_sets], domain, out / "actor.log")
        wait_until(lambda: watcher.last("status"), 120, "the robot node", tuple(procs.values()))
        bar = progress_bar(total=args.steps, unit="step", desc="robot steps")  # a line every few s in a log
        while procs["actor"].poll() is None:
            for name in ("robot", "learner"):
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} node exited with {procs[name].returncode}; see {out / (name + '.log')}")
            beat = watcher.last("actor") or {}
            bar.n = min(int(beat.get("steps", 0)), args.steps)
            bar.set_postfix(version=beat.get("version", "-"), episodes=beat.get("episodes", 0),
                            success=f"{beat.get('success_rate_recent', 0.0):.2f}")
            time.sleep(0.5)
        bar.close()
        if procs["actor"].returncode != 0:
            raise RuntimeError(f"actor node exited with {procs['actor'].returncode}; see {out / 'actor.log'}")
        stop(procs["learner"], timeout=60)
        summary = _summary(out, watcher)
        print(json.dumps(summary, indent=2), flush=True)
        return 0
    finally:
        watcher.close()
        for p in procs.values():
            stop(p, timeout=20)


def _summary(out: Path, watcher: Watcher) -> dict:
    from robotlearn.data import EpisodeDataset

    ds = EpisodeDataset(out / "learner" / "online.zarr")
    meta = [ds.episode_meta(i) for i in range(ds.n_episodes)]
    half = len(meta) // 2
    rate = lambda ms: sum(m["success"] for m in ms) / max(len(ms), 1)  # noqa: E731
    actor = watcher.last("actor") or {}
    return {"episodes": ds.n_episodes, "steps": ds.n_steps,
            "success_rate_first_half": rate(meta[:half]), "success_rate_second_half": rate(meta[half:]),
            "success_rate_first_50": rate(meta[:50]), "success_rate_last_50": rate(meta[-50:]),
            "policy_versions": [meta[0]["policy_version"], meta[-1]["policy_version"]] if meta else [],
            "actor_steps_per_s": actor.get("steps_per_s"), "zarr": str(out / "learner" / "online.zarr"),
            "logs": [str(out / f"{n}.log") for n in ("robot", "actor", "learner")]}


if __name__ == "__main__":
    raise SystemExit(main())
