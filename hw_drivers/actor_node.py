"""Actor node: the run's actor on a `Ros2RobotEnv`, shipping episodes over the ROS 2 transport.

    python -m hw_drivers.actor_node --params configs/ros2/finetune_panda_sim.yaml

Runs on the robot's computer next to the robot driver. It never waits for the
learner: if the learner dies it keeps acting with the last weights it received
and picks up new ones when a learner publishes again (weights are transient-local).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Optional

from hw_drivers.node_common import parse, stop_on_signals, transport_config
from hw_drivers.ros2_transport import Ros2ActorTransport
from robotlearn.runtime.assembly import actor_name, build_actor


def main(argv: Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[actor_node] %(message)s")
    args, spec = parse(__doc__.split("\n\n")[0], argv)
    stop, t0 = stop_on_signals(), time.time()
    actor = build_actor(spec, args.index)
    stats = actor.run(Ros2ActorTransport(transport_config(spec), actor_id=actor_name(spec, args.index)), stop)
    print(json.dumps({"actor_stats": stats, "wall_s": time.time() - t0}, default=float), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
