"""robomimic HDF5 -> zarr episodes.

robomimic files hold `data/demo_<i>/{actions (T, A), rewards (T,), dones (T,), obs/<key>}`
and `data.attrs["env_args"]` (JSON: env_name, env_kwargs). Low-dimensional obs
keys are concatenated into `state` (order and slices kept in attrs
`state_layout`), image obs `(T, H, W, 3)` uint8 named `<cam>_image` (robomimic) or `<cam>_rgb`
(LIBERO) become `images/<cam>`. A demo whose final reward is positive counts as a success and
as terminated; robomimic's `env_args` is kept in attrs for provenance.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from robotlearn.data.layout import DatasetError
from robotlearn.data.writer import EpisodeWriter


def _demo_order(names) -> list[str]:
    def index(n: str) -> int:
        m = re.fullmatch(r"demo_(\d+)", n)
        return int(m.group(1)) if m else 1 << 62

    return sorted(names, key=lambda n: (index(n), n))


def _concat_state(obs, keys: list[str], where: str) -> np.ndarray:
    parts = [np.asarray(obs[k], np.float32) for k in keys]
    lengths = {len(p) for p in parts}
    if len(lengths) > 1:
        raise DatasetError(f"{where}/obs keys differ in length: {dict(zip(keys, map(len, parts)))}")
    return np.concatenate([p.reshape(len(p), -1) for p in parts], 1)


def import_robomimic(hdf5: str | Path, out: str | Path, state_keys: list[str] | None = None,
                     image_keys: list[str] | None = None, overwrite: bool = False) -> int:
    """Convert every demo of a robomimic file; returns the number of episodes written."""
    import h5py

    hdf5 = Path(hdf5)
    if not hdf5.exists():
        raise DatasetError(f"no robomimic file at {hdf5}")
    if Path(out).exists() and not overwrite:
        raise DatasetError(f"{out} exists; pass overwrite=true to replace it")
    with h5py.File(hdf5, "r") as f:
        if "data" not in f:
            raise DatasetError(f"{hdf5} is not a robomimic file: no 'data' group (top level has {list(f)})")
        demos = _demo_order(f["data"].keys())
        if not demos:
            raise DatasetError(f"{hdf5}: data/ holds no demos")
        obs0 = f["data"][demos[0]]["obs"]
        if image_keys is None:
            image_keys = sorted(k for k in obs0 if obs0[k].ndim == 4 and obs0[k].dtype == np.uint8)
        if state_keys is None:
            state_keys = sorted(k for k in obs0 if k not in image_keys and obs0[k].ndim <= 2)
        layout, start = {}, 0
        for k in state_keys:
            if k not in obs0:
                raise DatasetError(f"{hdf5}: {demos[0]}/obs has no key {k!r} (has {sorted(obs0)})")
            width = int(np.prod(obs0[k].shape[1:]))
            layout[k] = [start, start + width]
            start += width
        env_args = json.loads(f["data"].attrs.get("env_args", "{}") or "{}")
        hz = (env_args.get("env_kwargs") or {}).get("control_freq")
        attrs = {"control_hz": float(hz) if hz else None, "state_layout": layout,
                 "import": {"from": "robomimic", "file": str(hdf5), "env_args": env_args}}
        with EpisodeWriter(out, overwrite=overwrite, attrs=attrs) as w:
            for name in demos:
                demo = f["data"][name]
                where = f"{hdf5}: data/{name}"
                for need in ("actions", "obs"):
                    if need not in demo:
                        raise DatasetError(f"{where} has no {need!r}")
                missing = [k for k in [*state_keys, *image_keys] if k not in demo["obs"]]
                if missing:
                    raise DatasetError(f"{where}/obs lacks keys {missing}")
                T = len(demo["actions"])
                obs = demo["obs"]
                ep = {
                    "action": np.asarray(demo["actions"], np.float32),
                    "state": _concat_state(obs, state_keys, where),
                    "reward": np.asarray(demo["rewards"], np.float32) if "rewards" in demo else np.zeros(T, np.float32),
                }
                for k in image_keys:
                    ep["images/" + re.sub(r"_(image|rgb)$", "", k)] = np.asarray(obs[k], np.uint8)
                bad = {k: len(v) for k, v in ep.items() if len(v) != T}
                if bad:
                    raise DatasetError(f"{where}: lengths {bad} differ from {T} actions")
                dones = np.asarray(demo["dones"]) if "dones" in demo else np.zeros(T)
                ok = bool(ep["reward"][-1] > 0)
                w.add_episode(ep, success=ok, source="human", terminated=bool(dones[-1]) or ok)
    return len(demos)
