"""Panda table-top tasks: `make_env("sim/reach" | "sim/lift" | "sim/pick_place" | "sim/peg_insert" | "sim/peg_pick_insert")`."""
from sim.tasks.base import PandaTaskEnv
from sim.tasks.lift import LiftEnv
from sim.tasks.peg_insert import PegInsertEnv
from sim.tasks.peg_pick_insert import PegPickInsertEnv
from sim.tasks.pick_place import PickPlaceEnv
from sim.tasks.reach import ReachEnv

__all__ = ["PandaTaskEnv", "ReachEnv", "LiftEnv", "PickPlaceEnv", "PegInsertEnv", "PegPickInsertEnv"]
