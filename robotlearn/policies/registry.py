"""Frozen base policies by name: the one registry every runtime builds its base from.

A base spec is `<name>` or `<name>:<arg>` for a registered base (`zero`, `expert`,
`expert:0.3`, `joint_reach`, ...) or a path to a BC/diffusion checkpoint; keyword
arguments (`RunSpec.base_kwargs`) go to the factory. A backend package registers its
own bases (`hw_drivers.bases` registers `joint_reach` when the ROS 2 env is imported).

Each entry declares whether it needs the live env (`needs_env`): a scripted expert
reads the simulator's true state, so it cannot be built from the env's description
alone nor replayed over stored demos; the learner then keeps the demos' recorded
action as their base action.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from robotlearn.policies.base import BasePolicy, ZeroPolicy

Factory = Callable[..., BasePolicy]  # factory(env, *, seed, arg, **kwargs); env: a RobotEnv or EnvDescription


@dataclass(frozen=True)
class BaseEntry:
    factory: Factory
    needs_env: bool  # True: only a live env will do (and demos cannot be replayed through it)
    doc: str = ""


BASES: dict[str, BaseEntry] = {}
CHECKPOINT = "checkpoint"


def register_base(name: str, factory: Factory, *, needs_env: bool = False, doc: str = "") -> None:
    BASES[name] = BaseEntry(factory, needs_env, doc)


def parse_base(spec: str) -> tuple[str, str | None]:
    """`expert:0.3` -> ("expert", "0.3"); a checkpoint path -> ("checkpoint", path)."""
    name, _, arg = spec.partition(":")
    if name in BASES:
        return name, arg or None
    if Path(spec).exists():
        return CHECKPOINT, spec
    known = " | ".join(f"{n}" for n in BASES if n != CHECKPOINT)
    raise FileNotFoundError(f"base {spec!r} is neither a registered base ({known}) nor an existing checkpoint path")


def base_entry(spec: str) -> BaseEntry:
    return BASES[parse_base(spec)[0]]


def make_base(spec: str, env: Any, seed: int = 0, **kwargs: Any) -> BasePolicy:
    """A BasePolicy for `env` (a live RobotEnv, or an EnvDescription where the base does not need one)."""
    name, arg = parse_base(spec)
    entry = BASES[name]
    if entry.needs_env and not hasattr(env, "step"):
        raise ValueError(f"base {spec!r} needs a live env, got only the description of {env.name!r}")
    try:
        return entry.factory(env, seed=seed, arg=arg, **kwargs)
    except TypeError as e:  # a wrong keyword in base_kwargs
        raise ValueError(f"base {spec!r} with base_kwargs {kwargs}: {e}") from e


def _zero(env, *, seed: int, arg: str | None) -> BasePolicy:
    return ZeroPolicy(int(env.action_space.shape[0]))


def _expert(env, *, seed: int, arg: str | None, noise: float | None = None) -> BasePolicy:
    if not hasattr(env, "make_expert"):
        raise ValueError(f"base=expert needs an env with make_expert(); {env.name} has none")
    try:
        noise = float(arg) if arg is not None else float(noise or 0.0)
    except ValueError:
        raise ValueError(f"base=expert:<noise> needs a number, got {arg!r}") from None
    return env.make_expert(noise=noise, seed=seed)


def _checkpoint(env, *, seed: int, arg: str | None, allow_env_mismatch: bool = False) -> BasePolicy:
    from robotlearn.policies.checkpoint import load_policy

    return load_policy(str(arg), env=env, allow_env_mismatch=allow_env_mismatch)


register_base("zero", _zero, doc="always 0: residual RL from scratch (RLPD-style)")
register_base("expert", _expert, needs_env=True, doc="the sim task's scripted expert; expert:<noise>")
register_base(CHECKPOINT, _checkpoint,
              doc="a train-bc checkpoint (BC or diffusion); give its path. base_kwargs: allow_env_mismatch")
