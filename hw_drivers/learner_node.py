"""Learner node: `run_learner` fed by the ROS 2 transport; can run on another machine.

    python -m hw_drivers.learner_node --params configs/ros2/finetune_panda_sim.yaml

It needs no connection to the robot: the env's spaces come from the robot params
file. Episodes are logged to `<learner.out_dir>/online.zarr`; weights are published
as versioned, transient-local messages so actors that (re)join get the latest.
A restarted learner resumes from its checkpoint and zarr log.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Optional

from hw_drivers.config import load_params
from hw_drivers.finetune_params import FinetuneParams, transport_config
from hw_drivers.node_common import parse, stop_on_signals
from hw_drivers.ros2_env import describe, resolve_params
from hw_drivers.ros2_transport import Ros2LearnerTransport
from robotlearn.runtime.learner import run_learner

log = logging.getLogger("robotlearn.learner_node")


def run(fp: FinetuneParams, stop) -> dict:
    path = resolve_params(fp.robot_params)
    robot = load_params(path, fp.robot_overrides)
    env_info, obs_space, _ = describe(robot, path.stem, fp.robot_params, fp.robot_overrides)
    base = None
    if fp.demos:
        if fp.base.kind != "checkpoint":
            raise ValueError("demos need base.kind=checkpoint (a policy to relabel their base actions)")
        from robotlearn.policies.checkpoint import load_policy

        base = load_policy(fp.base.checkpoint)
    transport = Ros2LearnerTransport(transport_config(fp, robot))
    try:
        return run_learner(transport, fp.rl, fp.learner, env_info, obs_space, fp.demos or None, base, stop)
    finally:
        transport.close()


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[learner_node] %(message)s")
    _, fp = parse(__doc__.split("\n\n")[0], argv)
    t0 = time.time()
    stats = run(fp, stop_on_signals())
    summary = {k: v for k, v in stats.items() if k != "episodes"}
    summary["n_episodes"] = len(stats.get("episodes", []))
    print(json.dumps({"learner_stats": summary, "wall_s": time.time() - t0}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
