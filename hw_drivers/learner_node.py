"""Learner node: the run's learner fed by the ROS 2 transport; can run on another machine.

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

from hw_drivers.node_common import parse, stop_on_signals, transport_config
from hw_drivers.ros2_transport import Ros2LearnerTransport
from robotlearn.runtime.assembly import build_learner


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[learner_node] %(message)s")
    _, spec = parse(__doc__.split("\n\n")[0], argv)
    stop, t0 = stop_on_signals(), time.time()
    stats = build_learner(spec).run(Ros2LearnerTransport(transport_config(spec)), stop)
    summary = {k: v for k, v in stats.items() if k != "episodes"}
    summary["n_episodes"] = len(stats.get("episodes", []))
    print(json.dumps({"learner_stats": summary, "wall_s": time.time() - t0}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
