"""Versioned byte messages for every transport: safetensors payload + JSON metadata.

No pickle crosses a process or machine boundary. Every message carries its kind
and schema version so a mismatched peer fails loudly instead of mis-decoding.
Three kinds travel:

- `Episode` (actor -> learner): one finished episode, arrays keyed like the zarr
  dataset (`EPISODE_ARRAYS`, plus optional `images/<camera>` uint8 (T, H, W, 3)),
  and its facts (success, terminated, policy version, actor id, times).
- weights (learner -> actors): the residual actor's tensors; the version lives in
  the header only (`weights_version` reads it without decoding the tensors).
- `EvalEpisode` (an eval worker -> `robotlearn eval num_envs=N`): one evaluated
  episode's outcome, and its video frames where it was recorded.

`peek_header` is the one reader of the safetensors header: transports use it to
count rows or order weights without decoding a payload.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY

SCHEMA_VERSION = 2
MAX_HEADER = 1 << 24  # bytes of JSON header a message may declare
EPISODE, WEIGHTS, EVAL_EPISODE = "episode", "weights", "eval_episode"

# The arrays every episode carries, (T, ...) each: key -> (dtype, trailing rank).
EPISODE_ARRAYS: dict[str, tuple[type, int]] = {
    STATE_KEY: (np.float32, 1),  # (T, S) the observation's state at each step
    "action": (np.float32, 1),  # (T, A) the action executed (a human's, where one intervened)
    "base_action": (np.float32, 1),  # (T, A) the frozen base's action at that step
    "reward": (np.float32, 0),  # (T,)
    "is_intervention": (np.bool_, 0),  # (T,) a human's action replaced the policy's
}
# Arrays an episode may carry besides EPISODE_ARRAYS and images/<camera> (uint8 (T, H, W, 3)).
OPTIONAL_ARRAYS: dict[str, tuple[type, int]] = {
    "features": (np.float32, 1),  # (T, F) frozen image features the residual read (rl.encoder=base)
}


class MessageError(ValueError):
    """A byte message that is not what the receiver expects."""


def peek_header(payload: bytes) -> tuple[str, dict[str, Any], dict[str, list[int]]]:
    """(kind, meta, {array: shape}) from the safetensors header alone; MessageError if unreadable."""
    if len(payload) < 8:
        raise MessageError(f"message of {len(payload)} bytes is too short to be safetensors")
    n = int.from_bytes(payload[:8], "little")
    if n > MAX_HEADER or len(payload) < 8 + n:
        raise MessageError(f"message header of {n} bytes is truncated or too large ({len(payload)} bytes in all)")
    try:
        header = json.loads(bytes(payload[8 : 8 + n]))
        md = header.get("__metadata__", {})
        if not isinstance(md, dict):
            raise TypeError(f"__metadata__ is a {type(md).__name__}, not a mapping")
        meta = json.loads(md.get("meta", "{}"))
        if not isinstance(meta, dict):
            raise TypeError(f"meta is a {type(meta).__name__}, not a mapping")
        shapes = {k: list(v["shape"]) for k, v in header.items() if k != "__metadata__"}
        if not all(type(d) is int and d >= 0 for shape in shapes.values() for d in shape):
            raise ValueError("array shapes must be lists of non-negative ints")
    except (ValueError, UnicodeDecodeError, TypeError, KeyError, AttributeError) as e:
        raise MessageError(f"message has a corrupt header: {e}") from e
    if md.get("schema") != str(SCHEMA_VERSION):
        raise MessageError(f"{md.get('kind')} message has schema {md.get('schema')!r}, this build speaks {SCHEMA_VERSION}")
    return str(md.get("kind")), meta, shapes


def _encode(kind: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    return st_save(arrays, metadata={"kind": kind, "schema": str(SCHEMA_VERSION), "meta": json.dumps(meta)})


def _decode(kind: str, payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    got, meta, _ = peek_header(payload)
    if got != kind:
        raise MessageError(f"expected a {kind!r} message, got kind={got!r}")
    try:
        return st_load(bytes(payload)), meta
    except Exception as e:  # safetensors raises its own types for inconsistent offsets/dtypes
        raise MessageError(f"{kind} message does not decode: {e}") from e


@dataclass
class Episode:
    """One finished episode, as the actor sends it and the learner and the zarr log take it."""

    arrays: dict[str, np.ndarray]  # EPISODE_ARRAYS + optional images/<camera>, equal length T
    success: bool
    terminated: bool  # ended in a terminal state (vs. a time-limit truncation): no bootstrap past it
    policy_version: int  # the weights version acting at the episode's end
    policy_version_start: int = -1  # ... and at its start
    actor_id: str = ""
    start_time: float = 0.0
    end_time: float = 0.0
    warmup: bool = False  # acted with base + uniform noise (before the residual took over)
    reward_source: str = "env"  # what gave the reward: env (its own detector) | classifier (a learned one)
    seed: int = -1  # the env reset seed the episode started from (-1: not known)

    def __len__(self) -> int:
        return len(self.arrays["reward"])

    def meta(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "arrays"}

    def validate(self) -> "Episode":
        """Keys, dtypes, ranks, equal lengths and finite values; MessageError names what is wrong."""
        who = self.actor_id or "?"
        missing = [k for k in EPISODE_ARRAYS if k not in self.arrays]
        if missing:
            raise MessageError(f"episode from {who} lacks {missing}")
        extra = [k for k in self.arrays
                 if k not in EPISODE_ARRAYS and k not in OPTIONAL_ARRAYS and not k.startswith(IMAGE_PREFIX)]
        if extra:
            raise MessageError(f"episode from {who} has undeclared arrays {extra}")
        T = len(self.arrays["reward"])
        for k, v in self.arrays.items():
            dtype, rank = EPISODE_ARRAYS.get(k) or OPTIONAL_ARRAYS.get(k) or (np.uint8, 3)
            if v.dtype != dtype or v.ndim != rank + 1 or len(v) != T:
                raise MessageError(f"episode from {who}: {k} is {v.dtype}{list(v.shape)}, expected {np.dtype(dtype)} "
                                   f"with {rank + 1} dims and {T} rows")
        if T == 0:
            raise MessageError(f"episode from {who} is empty")
        if self.arrays["action"].shape != self.arrays["base_action"].shape:
            raise MessageError(f"episode from {who}: action {self.arrays['action'].shape} and base_action "
                               f"{self.arrays['base_action'].shape} differ")
        finite = [STATE_KEY, "action", "base_action", "reward", *[k for k in OPTIONAL_ARRAYS if k in self.arrays]]
        if not all(np.all(np.isfinite(self.arrays[k])) for k in finite):
            raise MessageError(f"episode from {who} has non-finite {'/'.join(finite)} values")
        return self

    def encode(self) -> bytes:
        return _encode(EPISODE, self.validate().arrays, self.meta())

    @classmethod
    def decode(cls, payload: bytes) -> "Episode":
        arrays, meta = _decode(EPISODE, payload)
        known = {f.name for f in fields(cls)} - {"arrays"}
        unknown, missing = set(meta) - known, {"success", "terminated", "policy_version"} - set(meta)
        if unknown or missing:
            raise MessageError(f"episode header has unknown keys {sorted(unknown)} / lacks {sorted(missing)}")
        try:
            ep = cls(arrays, **meta)
            ep.success, ep.terminated, ep.warmup = bool(ep.success), bool(ep.terminated), bool(ep.warmup)
            ep.policy_version, ep.policy_version_start = int(ep.policy_version), int(ep.policy_version_start)
            ep.actor_id, ep.start_time, ep.end_time = str(ep.actor_id), float(ep.start_time), float(ep.end_time)
            ep.reward_source, ep.seed = str(ep.reward_source), int(ep.seed)
        except (TypeError, ValueError) as e:
            raise MessageError(f"episode header has a value of the wrong type: {e}") from e
        return ep.validate()

    @staticmethod
    def rows(payload: bytes) -> int:
        """Steps in an encoded episode, from its header only."""
        kind, _, shapes = peek_header(payload)
        if kind != EPISODE or "reward" not in shapes or not shapes["reward"]:
            raise MessageError(f"not an episode message (kind={kind!r})")
        return int(shapes["reward"][0])


@dataclass
class EvalEpisode:
    """One evaluated episode: what `evaluate` counts, the same in process and from an eval worker."""

    seed: int  # the env reset seed it started from
    success: bool
    ret: float  # the return, summed in float64 as the rewards came
    length: int
    env_success: bool | None = None  # the env's own detector, where the reward came from another source
    frames: np.ndarray | None = None  # (T + 1, H, W, 3) uint8 video frames, where recorded

    def encode(self) -> bytes:
        arrays = {} if self.frames is None else {"frames": np.asarray(self.frames, np.uint8)}
        meta = {"seed": int(self.seed), "success": bool(self.success), "ret": float(self.ret),
                "length": int(self.length), "env_success": None if self.env_success is None else bool(self.env_success)}
        return _encode(EVAL_EPISODE, arrays, meta)

    @classmethod
    def decode(cls, payload: bytes) -> "EvalEpisode":
        arrays, meta = _decode(EVAL_EPISODE, payload)
        if set(meta) != {"seed", "success", "ret", "length", "env_success"} or set(arrays) - {"frames"}:
            raise MessageError(f"eval_episode message has keys {sorted(meta)} and arrays {sorted(arrays)}")
        frames = arrays.get("frames")
        if frames is not None and (frames.dtype != np.uint8 or frames.ndim != 4):
            raise MessageError(f"eval_episode frames are {frames.dtype}{list(frames.shape)}, expected uint8 (T, H, W, 3)")
        try:
            env_success = None if meta["env_success"] is None else bool(meta["env_success"])
            return cls(int(meta["seed"]), bool(meta["success"]), float(meta["ret"]), int(meta["length"]), env_success,
                       frames)
        except (TypeError, ValueError) as e:
            raise MessageError(f"eval_episode header has a value of the wrong type: {e}") from e


def encode_weights(version: int, tensors: dict[str, np.ndarray], run: str = "", **meta: Any) -> bytes:
    """`run`: the learner run the version counts in (versions rise within a run, see `WeightsGate`)."""
    return _encode(WEIGHTS, tensors, {"version": int(version), "run": str(run), **meta})


def decode_weights(payload: bytes) -> tuple[int, dict[str, np.ndarray], dict[str, Any]]:
    arrays, meta = _decode(WEIGHTS, payload)
    for k, v in arrays.items():
        if v.dtype.kind not in "fiub":
            raise MessageError(f"weights tensor {k!r} has dtype {v.dtype}, expected numbers")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise MessageError(f"weights tensor {k!r} has non-finite values (NaN/inf): refused")
    for k in ("num_updates", "backlog_steps"):  # counters the actor acts on (backlog_steps gates its hold)
        v = meta.get(k, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**53:
            raise MessageError(f"weights message has {k}={str(v)[:40]!r}, expected an int >= 0")
    return weights_version(payload), arrays, {k: v for k, v in meta.items() if k != "version"}


def weights_key(payload: bytes) -> tuple[str, int]:
    """(learner run, version) of an encoded weights message, from the JSON header only."""
    kind, meta, _ = peek_header(payload)
    if kind != WEIGHTS:
        raise MessageError(f"expected a 'weights' message, got kind={kind!r}")
    v, run = meta.get("version"), meta.get("run", "")
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise MessageError(f"weights message has version {v!r}, expected an int >= 0")
    if not isinstance(run, str) or len(run) > 128:
        raise MessageError(f"weights message has run {str(run)[:40]!r}, expected a string id")
    return run, v


def weights_version(payload: bytes) -> int:
    """The version inside an encoded weights message (reads only the JSON header)."""
    return weights_key(payload)[1]


class WeightsGate:
    """Which weights an actor takes: within a learner run the version must rise; a message from
    another run (a restarted learner) starts that run's count. So a forged version 10^15 cannot
    latch out a genuine learner: its next message (its own run id) replaces it. Against forgery
    itself, sign the wire (`Signer`)."""

    def __init__(self) -> None:
        self.current: tuple[str, int] | None = None
        self.run_changes = 0

    def offer(self, key: tuple[str, int]) -> bool:
        if self.current is not None and key[0] == self.current[0] and key[1] <= self.current[1]:
            return False
        if self.current is not None and key[0] != self.current[0]:
            self.run_changes += 1
        self.current = key
        return True


SIG_MAGIC = b"RLS1"  # trailer: payload + HMAC-SHA256(key, payload) (32 bytes) + magic
SIG_LEN = 32 + len(SIG_MAGIC)


class AuthError(MessageError):
    """A message without a valid signature from a holder of the shared key."""


class Signer:
    """HMAC-SHA256 over every payload with a shared key file (`auth_key_file`). The tag trails the
    payload, so header readers (`peek_header`, `weights_key`, `Episode.rows`) work on a signed
    message as on a plain one; `verify` strips the tag before anything decodes the body."""

    MIN_KEY = 16

    def __init__(self, key: bytes) -> None:
        if len(key) < self.MIN_KEY:
            raise ValueError(f"auth key of {len(key)} bytes is too short (>= {self.MIN_KEY}; "
                             f"make one with: head -c 32 /dev/urandom > robotlearn.key)")
        self._key = bytes(key)

    @classmethod
    def from_file(cls, path: str) -> "Signer":
        import os

        from robotlearn.config import ConfigError

        try:
            path = os.path.expanduser(path)
            key = open(path, "rb").read().strip()
        except OSError as e:
            raise ConfigError(f"auth_key_file {path}: {e.strerror}") from None
        if os.name == "posix" and os.stat(path).st_mode & 0o077:
            import logging

            logging.getLogger(__name__).warning("auth_key_file %s is readable by other users (chmod 600 it)", path)
        try:
            return cls(key)
        except ValueError as e:
            raise ConfigError(f"auth_key_file {path}: {e}") from None

    def _tag(self, payload: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def sign(self, payload: bytes) -> bytes:
        return bytes(payload) + self._tag(payload) + SIG_MAGIC

    def verify(self, blob: bytes) -> bytes:
        """The payload of a correctly signed message; AuthError for an unsigned or badly signed one."""
        import hmac

        blob = bytes(blob)
        if len(blob) < SIG_LEN or blob[-len(SIG_MAGIC):] != SIG_MAGIC:
            raise AuthError("unsigned message (the wire requires auth_key_file signatures)")
        payload, tag = blob[:-SIG_LEN], blob[-SIG_LEN:-len(SIG_MAGIC)]
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise AuthError("message with a bad signature (another key, or altered in transit)")
        return payload
