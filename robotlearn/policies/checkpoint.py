"""Policy checkpoints without pickle: model.safetensors + config.json.

config.json holds everything needed to rebuild the module (policy kind and
config, observation shapes, action dim) plus where it came from (env, dataset,
step); the normalisation statistics are buffers inside model.safetensors (a
readable copy sits in config.json). Saving writes a temporary folder and swaps
it in, so a crash mid-save never destroys the previous checkpoint.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from robotlearn.atomic_dir import atomic_dir, readable_dir
from robotlearn.envs.interface import EnvInfo, RobotEnv
from robotlearn.policies.bc import BCPolicy
from robotlearn.policies.chunked import ChunkedPolicy
from robotlearn.policies.config import PolicyConfig
from robotlearn.policies.diffusion import DiffusionPolicy

FORMAT = "robotlearn-policy"
VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
POLICY_KINDS: dict[str, type[ChunkedPolicy]] = {"bc": BCPolicy, "diffusion": DiffusionPolicy}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or from an unknown format version."""


class PolicyEnvMismatchError(ValueError):
    """The checkpoint's observation keys/shapes or action dim do not match the env it is loaded into."""


def build_policy(cfg: PolicyConfig, obs_shapes: dict[str, tuple[int, ...]], action_dim: int) -> ChunkedPolicy:
    if cfg.kind not in POLICY_KINDS:
        raise ValueError(f"unknown policy kind {cfg.kind!r}; known: {sorted(POLICY_KINDS)}")
    return POLICY_KINDS[cfg.kind](cfg, obs_shapes, action_dim)


def env_info_dict(info: EnvInfo | None) -> dict[str, Any] | None:
    return None if info is None else asdict(info)


def save_policy(policy: ChunkedPolicy, path: str | Path, env_info: EnvInfo | dict | None = None, **meta: Any) -> Path:
    """Write `path/` (model.safetensors + config.json) atomically; `meta` is stored as-is (JSON types)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT, "version": str(VERSION)})
        config = {
            "format": FORMAT,
            "version": VERSION,
            "kind": policy.kind,
            "policy": policy.cfg.to_dict(),
            "obs_shapes": {k: list(v) for k, v in policy.obs_shapes.items()},
            "action_dim": policy.action_dim,
            "env": env_info if isinstance(env_info, dict) or env_info is None else env_info_dict(env_info),
            "normalizer": policy.normalizer.stats(),
            "meta": meta,
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, a file inside one, or a training run folder (-> checkpoints/best, else last)."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    for cand in (p, p / "checkpoints" / "best", p / "checkpoints" / "last"):
        cand = readable_dir(cand)  # mid-swap, the complete copy beside it
        if (cand / CONFIG).exists():
            return cand
    raise CheckpointError(f"no policy checkpoint at {str(path)!r} (looked for {CONFIG} there and in checkpoints/best|last)")


def read_config(path: str | Path) -> dict[str, Any]:
    ckpt = resolve_checkpoint(path)
    try:
        config = json.loads((ckpt / CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{ckpt / CONFIG}: not valid JSON ({e})") from e
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt / CONFIG}: format {config.get('format')!r} is not {FORMAT!r}")
    if config.get("version") != VERSION:
        raise CheckpointError(f"{ckpt / CONFIG}: version {config.get('version')} unsupported (this code reads {VERSION})")
    return config


def env_difference(recorded: dict[str, Any] | None, info: EnvInfo, uses_state: bool = True) -> str | None:
    """The first difference between the env a policy (or dataset) was made on and `info`, or None.

    The evidence: the action spec (kind, dimension names, the physical values of -1 / +1) and, when the
    policy reads `state`, the state layout (`EnvInfo.state_names`). Without a record there is nothing to
    compare; a record without a layout is accepted only on the env it names.
    """
    recorded = recorded or {}
    name = recorded.get("name", "?")
    same_env = name in ("?", info.name)
    spec = recorded.get("action_spec")
    if spec is not None:
        mine = info.action_spec
        if spec.get("kind") != mine.kind:
            return f"action kind is {mine.kind!r}, policy acts in {spec.get('kind')!r}"
        if tuple(spec.get("names", ())) != tuple(mine.names):
            return f"action dimensions are {list(mine.names)}, policy's are {list(spec.get('names', ()))}"
        for what in ("low", "high"):
            theirs, ours = np.asarray(spec.get(what, ()), float), np.asarray(getattr(mine, what), float)
            if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-6, atol=1e-9):
                return (f"action scale differs: {what} (the physical value of {'-1' if what == 'low' else '+1'}) is "
                        f"{ours.tolist()}, policy's is {theirs.tolist()}")
    elif not same_env:
        return "the policy records no action spec to compare"
    if uses_state:
        theirs, ours = tuple(recorded.get("state_names") or ()), tuple(info.state_names)
        if theirs and ours and theirs != ours:
            i = next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))
            at = lambda names: repr(names[i]) if i < len(names) else "nothing"  # noqa: E731
            return f"state[{i}] is {at(ours)} in the env, {at(theirs)} for the policy (state layouts differ)"
        if not (theirs and ours) and not same_env:
            return "the state layout is not declared on both sides (EnvInfo.state_names), so it cannot be matched"
    return None


def check_env_compatible(config: dict[str, Any], env: RobotEnv, where: str = "checkpoint",
                         allow_env_mismatch: bool = False) -> None:
    """Raise PolicyEnvMismatchError naming every shape difference, then the first difference in the evidence
    (`env_difference`); `allow_env_mismatch` waives the evidence (shapes must still fit) with a warning."""
    problems = []
    spaces = env.observation_space.spaces
    for key, shape in config["obs_shapes"].items():
        if key not in spaces:
            problems.append(f"observation {key!r} is missing (env has {sorted(spaces)})")
        elif tuple(spaces[key].shape) != tuple(shape):
            problems.append(f"observation {key!r} has shape {tuple(spaces[key].shape)}, policy expects {tuple(shape)}")
    env_a = int(env.action_space.shape[0])
    if env_a != config["action_dim"]:
        problems.append(f"action dim is {env_a}, policy outputs {config['action_dim']}")
    trained = (config.get("env") or {}).get("name", "?")
    if problems:
        raise PolicyEnvMismatchError(
            f"{where} (trained on env {trained!r}) does not fit env {env.name!r}: " + "; ".join(problems)
        )
    diff = env_difference(config.get("env"), env.env_info, uses_state="state" in config["obs_shapes"])
    if diff and not allow_env_mismatch:
        raise PolicyEnvMismatchError(f"{where} (trained on env {trained!r}) does not fit env {env.name!r}: {diff} "
                                     f"(allow_env_mismatch=true runs it anyway)")
    if diff:
        warnings.warn(f"{where} was trained on env {trained!r}, running it on {env.name!r} although {diff}",
                      stacklevel=3)


def load_policy(path: str | Path, env: RobotEnv | None = None, device: str | torch.device | None = None,
                allow_env_mismatch: bool = False) -> ChunkedPolicy:
    """Rebuild a policy from a checkpoint (no pickle), in eval mode on `device` (default: cuda if present).

    With `env`, first checks that it fits: observation keys/shapes and action dim, then the action spec and
    state layout it was trained with (`check_env_compatible`; `allow_env_mismatch` waives the latter).
    """
    ckpt = resolve_checkpoint(path)
    config = read_config(ckpt)
    if env is not None:
        check_env_compatible(config, env, where=f"policy checkpoint {str(ckpt)!r}",
                             allow_env_mismatch=allow_env_mismatch)
    try:
        cfg = PolicyConfig.from_dict(config["policy"])
    except Exception as e:  # omegaconf raises several types; all mean "config from another code version"
        raise CheckpointError(f"{ckpt / CONFIG}: policy config does not fit this code's PolicyConfig ({e})") from e
    obs_shapes = {k: tuple(v) for k, v in config["obs_shapes"].items()}
    policy = build_policy(cfg, obs_shapes, config["action_dim"])
    try:
        state = load_file(str(ckpt / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{ckpt / WEIGHTS}: cannot read weights ({e})") from e
    missing, unexpected = policy.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{ckpt / WEIGHTS}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    policy.to(device).eval()
    policy.checkpoint_config = config  # provenance (env, dataset, step) for eval and the residual learner
    return policy
