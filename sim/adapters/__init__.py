"""Adapters that put other simulators behind the robotlearn `RobotEnv` interface.

Each imports its simulator lazily (only when the env is built), so robosuite and
gym-hil stay optional extras.
"""
from sim.adapters.common import BoxRescaler, flatten_obs

__all__ = ["BoxRescaler", "flatten_obs"]
