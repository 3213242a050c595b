"""Key maps and array roles: which arrays of a dataset a policy reads, under which robotlearn name.

A key map `{img: images/front, agent_pos: state}` renames a dataset's arrays when it is read
(nothing on disk changes), so a diffusion_policy-layout zarr (`data/img`, `data/camera_0`, ...)
trains like a robotlearn one. Each array then has one role: `state`, `camera` (an `images/<cam>`
the policy reads), `action`, `reward`, `intervention`, or `unused`. An unused array that looks
like a camera is worth a warning: it is most likely a camera the user meant to train on.
"""
from __future__ import annotations

from typing import Iterable, Mapping, TypeVar

import numpy as np

from robotlearn.data.layout import DatasetError
from robotlearn.envs.interface import IMAGE_PREFIX, STATE_KEY

ACTION_KEY, REWARD_KEY, INTERVENTION_KEY = "action", "reward", "is_intervention"
ROLES = ("state", "camera", "action", "reward", "intervention", "unused")

V = TypeVar("V")


def apply_key_map(arrays: Mapping[str, V], key_map: Mapping[str, str] | None, where: str = "") -> dict[str, V]:
    """`arrays` with each `source` of `key_map` renamed to its target; unmapped arrays keep their names.

    Raises DatasetError naming the key for a source the dataset lacks or a target that would collide.
    """
    if not key_map:
        return dict(arrays)
    key_map = {str(k): str(v) for k, v in key_map.items()}
    missing = sorted(k for k in key_map if k not in arrays)
    if missing:
        raise DatasetError(f"{where}: keys= maps {missing}, which the dataset does not have (it has {sorted(arrays)})")
    targets = list(key_map.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise DatasetError(f"{where}: keys= maps several arrays to {twice}")
    kept = {k: v for k, v in arrays.items() if k not in key_map}
    clash = sorted(t for t in targets if t in kept)
    if clash:
        raise DatasetError(f"{where}: keys= maps an array to {clash}, which the dataset already has; "
                           f"map the existing one elsewhere too (e.g. keys='{{{clash[0]}: old_{clash[0].replace('/', '_')}, ...}}')")
    out = {**kept, **{key_map[k]: v for k, v in arrays.items() if k in key_map}}
    return dict(sorted(out.items()))


def default_obs_keys(keys: Iterable[str]) -> list[str]:
    """The observation keys a policy reads when none are given: `state` and every `images/<cam>`."""
    return [k for k in keys if k == STATE_KEY or k.startswith(IMAGE_PREFIX)]


def unsupported_obs_keys(keys: Iterable[str]) -> list[str]:
    """Observation keys no policy encoder reads (it reads `state` and `images/<cam>` only)."""
    return sorted(k for k in keys if k != STATE_KEY and not k.startswith(IMAGE_PREFIX))


def looks_like_camera(shape: tuple[int, ...], dtype) -> bool:
    """Per-step (H, W, 3) frames: uint8, or float at least 16x16 (diffusion_policy stores float frames)."""
    dt = np.dtype(dtype)
    if len(shape) != 3 or shape[-1] != 3:
        return False
    return dt == np.uint8 or (dt.kind == "f" and min(shape[:2]) >= 16)


def array_roles(schema: Mapping[str, tuple[tuple[int, ...], object]], obs_keys: Iterable[str] | None = None) -> dict[str, str]:
    """{key: role} for a per-step schema {key: (shape, dtype)}; `obs_keys` are the observations read
    (default: `default_obs_keys`)."""
    obs = set(default_obs_keys(schema) if obs_keys is None else obs_keys)
    fixed = {ACTION_KEY: "action", REWARD_KEY: "reward", INTERVENTION_KEY: "intervention"}
    roles = {}
    for k in schema:
        if k in fixed:
            roles[k] = fixed[k]
        elif k in obs:
            roles[k] = "camera" if k.startswith(IMAGE_PREFIX) else "state"
        else:
            roles[k] = "unused"
    return roles


def unused_camera_warnings(schema: Mapping[str, tuple[tuple[int, ...], object]], roles: Mapping[str, str]) -> list[str]:
    """One line per unused array that looks like a camera, saying how to use it."""
    out = []
    for k, (shape, dtype) in schema.items():
        if roles.get(k) == "unused" and looks_like_camera(tuple(shape), dtype):
            cam = k.removeprefix(IMAGE_PREFIX).replace("/", "_")
            hint = ("add it to policy.obs_keys" if k.startswith(IMAGE_PREFIX)
                    else f"map it with keys='{{{k}: {IMAGE_PREFIX}{cam}}}'")
            out.append(f"data/{k} {tuple(shape)} {np.dtype(dtype)} looks like a camera but no policy reads it; {hint}")
    return out
