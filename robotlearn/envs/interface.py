"""The one environment contract that sim tasks and ROS 2 robots both implement.

Policies, datasets and learners only ever see this: a dict observation
(`state` float32 + optional `images/<camera>` uint8 HxWx3), a Box action in
[-1, 1] whose mapping to physical units the backend owns and declares, sparse
reward, and `info` with `success`, `is_intervention` and `timestamp`.
The timestamp is the observation's own clock, never the host's: simulated seconds
since reset in simulation (so seeded runs give identical `info`, as gymnasium's
env checker requires), the sensor stamp on a robot.

Backends subclass `RobotEnv` and implement `_reset` / `_step`; the base class
owns the behaviour every backend must share (action validation, time limit,
step-after-done), so the conformance suite in tests/ checks one implementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

STATE_KEY = "state"
IMAGE_PREFIX = "images/"

# `info` keys that cross modules. Every step sets the first three; the rest only where they apply.
INFO_SUCCESS = "success"  # bool: the task's success detector fired this step
INFO_INTERVENTION = "is_intervention"  # bool: a human's action replaced the policy's this step
# float s: when the returned observation was taken. Simulated backends: seconds of simulated time since
# reset (`RobotEnv.sim_time`), deterministic. Robots: the stamp of the state message the observation was
# built from (the stamp the next command carries). Host wall-clock time is never put here.
INFO_TIMESTAMP = "timestamp"
INFO_INTERVENTION_ACTION = "intervention_action"  # (A,) float32 normalised: the human's action that was executed
INFO_HUMAN_LABEL = "human_label"  # bool: a human's verdict arrived this step (True success, False failure)


class EnvError(RuntimeError):
    """Misuse of an environment (bad action, step after done, stale sensors)."""


class EpisodeDoneError(EnvError):
    """step() was called after the episode ended without a reset()."""


class InvalidActionError(EnvError, ValueError):
    """An action with the wrong shape or non-finite values."""


@dataclass(frozen=True)
class ActionSpec:
    """How a normalised action in [-1, 1]^A maps to physical units on this backend.

    `kind` is e.g. "ee_delta_pos+gripper", "joint_pos", "joint_vel"; `low`/`high`
    are the physical values that -1 and +1 map to, per dimension; `names` label
    the dimensions (joint names, "dx", "gripper", ...).
    """

    kind: str
    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    units: tuple[str, ...] = ()

    def to_physical(self, action: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return lo + (np.asarray(action) + 1.0) * 0.5 * (hi - lo)


@dataclass
class EnvInfo:
    """Static facts about an env that datasets store so a task can be recreated."""

    name: str
    control_hz: float
    horizon: int
    action_spec: ActionSpec
    config: dict[str, Any] = field(default_factory=dict)  # kwargs that make_env(name, **config) accepts
    # A name per `state` dimension, in order (() = not declared). Checkpoints and datasets record it, so a
    # policy moves to another env only when the layouts match (`proprio_state_names` for robot state).
    state_names: tuple[str, ...] = ()


def proprio_state_names(n_joints: int, velocity: bool = True, tcp: bool = True, gripper: bool = True
                        ) -> tuple[str, ...]:
    """The state a robot driver can provide, in this order: joint positions q0.. (rad), velocities dq0..
    (rad/s), TCP position tcp_x/y/z from forward kinematics (m, robot base frame), gripper width (m)."""
    names = [f"q{i}" for i in range(n_joints)]
    names += [f"dq{i}" for i in range(n_joints)] if velocity else []
    names += ["tcp_x", "tcp_y", "tcp_z"] if tcp else []
    return tuple(names + (["gripper_width"] if gripper else []))


@dataclass(frozen=True)
class EnvDescription:
    """What a learner needs of an env without running one: its facts and spaces."""

    env_info: EnvInfo
    observation_space: spaces.Dict
    action_space: spaces.Box

    @property
    def name(self) -> str:
        return self.env_info.name


def image_keys(space: spaces.Dict) -> list[str]:
    return sorted(k for k in space.spaces if k.startswith(IMAGE_PREFIX))


def image_shapes(space: spaces.Dict) -> dict[str, tuple[int, ...]]:
    """{images/<cam>: (H, W, 3)} for every camera in an observation space."""
    return {k: tuple(space.spaces[k].shape) for k in image_keys(space)}


def make_observation_space(state_dim: int, cameras: dict[str, tuple[int, int]] | None = None) -> spaces.Dict:
    """`cameras` maps camera name -> (height, width)."""
    d: dict[str, spaces.Space] = {
        STATE_KEY: spaces.Box(-np.inf, np.inf, shape=(state_dim,), dtype=np.float32)
    }
    for cam, (h, w) in (cameras or {}).items():
        d[IMAGE_PREFIX + cam] = spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
    return spaces.Dict(d)


class RobotEnv(gym.Env):
    """Base class for every backend.

    Out-of-range actions are clipped to [-1, 1] (declared by `clips_actions`);
    NaN/inf or wrongly shaped actions raise `InvalidActionError` and nothing is
    sent to the robot. Subclasses set `observation_space`, `action_space`
    (Box [-1, 1], float32) and `env_info`, and implement `_reset` and `_step`.
    """

    metadata = {"render_modes": []}
    clips_actions = True
    reward_type = "sparse"  # "sparse": 1.0 on success else 0.0; "dense": the task declares its shaping
    paces_itself = False  # True: step() holds the wall-clock control rate (a robot); callers must not sleep too
    accepts_interventions = False  # True: a human can take over (INFO_INTERVENTION / INFO_INTERVENTION_ACTION)
    accepts_labels = False  # True: a human can label episodes (INFO_HUMAN_LABEL); reward=label needs it
    reward_source = "env"  # what gives the reward: "env" (its own success detector) or a wrapper's ("classifier")

    env_info: EnvInfo
    observation_space: spaces.Dict
    action_space: spaces.Box

    def __init__(self) -> None:
        self._done = True
        self._t = 0
        self._needs_reset_msg = "call reset() before step()"

    # --- declared facts -------------------------------------------------
    @property
    def control_hz(self) -> float:
        return self.env_info.control_hz

    @property
    def horizon(self) -> int:
        return self.env_info.horizon

    @property
    def name(self) -> str:
        return self.env_info.name

    @property
    def description(self) -> EnvDescription:
        return EnvDescription(self.env_info, self.observation_space, self.action_space)

    def wait_for_intervention(self, timeout_s: float) -> bool:
        """Block until a human's input is live (True) or `timeout_s` passes (False). Envs without one: False."""
        return False

    # --- gymnasium API --------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self._reset(seed=seed, options=options or {})
        self._t = 0
        self._done = False
        info.setdefault(INFO_SUCCESS, False)
        info.setdefault(INFO_INTERVENTION, False)
        info.setdefault(INFO_TIMESTAMP, float(self.sim_time()))
        return obs, info

    def step(self, action):
        if self._done:
            raise EpisodeDoneError(
                f"{self.name}: step() called after the episode ended (terminated or truncated at "
                f"t={self._t}); {self._needs_reset_msg}"
            )
        action = self.validate_action(action)
        obs, reward, terminated, info = self._step(action)
        self._t += 1
        truncated = (not terminated) and self._t >= self.horizon
        self._done = bool(terminated or truncated)
        info.setdefault(INFO_SUCCESS, False)
        info.setdefault(INFO_INTERVENTION, False)
        info.setdefault(INFO_TIMESTAMP, float(self.sim_time()))
        info["t"] = self._t
        return obs, float(reward), bool(terminated), bool(truncated), info

    def validate_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=np.float32)
        if a.shape != self.action_space.shape:
            raise InvalidActionError(
                f"{self.name}: action has shape {a.shape}, expected {self.action_space.shape} "
                f"({', '.join(self.env_info.action_spec.names)})"
            )
        if not np.all(np.isfinite(a)):
            bad = [self.env_info.action_spec.names[i] for i in np.flatnonzero(~np.isfinite(a))]
            raise InvalidActionError(f"{self.name}: action has non-finite values in {bad}: {a.tolist()}")
        return np.clip(a, -1.0, 1.0)

    # --- backend hooks --------------------------------------------------
    def sim_time(self) -> float:
        """Simulated seconds since reset: INFO_TIMESTAMP unless the backend sets it (a robot sets its sensor
        stamp). This default counts control periods; a backend with a physics clock returns that instead."""
        return self._t / self.control_hz

    def _reset(self, seed: int | None, options: dict) -> tuple[dict[str, np.ndarray], dict]:
        raise NotImplementedError

    def _step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, dict]:
        """Apply a validated, clipped action; return (obs, reward, terminated, info)."""
        raise NotImplementedError
