"""The one on-disk layout of a robotlearn episode dataset (a zarr v3 directory store).

    <root>/
      zarr.json            attrs: layout_version, schema {key: {shape, dtype}}, control_hz,
                           env {name, control_hz, horizon, action_spec, config}, categories
      data/<key>           (N, *shape) arrays concatenated over all episodes:
                           state, action, reward, is_intervention, images/<cam>, extras (base_action, ...)
      meta/episode_ends    (E,) int64 cumulative ends, as in diffusion_policy's ReplayBuffer;
                           written LAST by every commit, so it is the commit marker
      meta/<field>         (E,) per-episode metadata: success, length, source (int code into
                           attrs.categories.source), policy_version, start_time, end_time, terminated

Crash safety rests on three facts: zarr's LocalStore writes each file atomically
(temp file + rename), data is appended before `meta/episode_ends`, and readers
trust only `episode_ends`. After a kill -9, data arrays may be longer than
`episode_ends[-1]` (the partial episode) and meta arrays longer than E; readers
ignore and report that tail, a reopened writer trims it. Power loss (no fsync)
is out of scope.

Chunking, measured with benchmarks/dataset_io.py (state + two 84x84 cameras of real
sim/lift frames, 2000 steps, 2 shared CPU cores; raw 42.5 kB per step):
    frames/chunk   write steps/s   bytes/step   random windows/s from zarr (n_obs 2, horizon 16)
         1            120-200        15.3 kB          240-300
         4            290-580         9.2 kB          215-270     <- default
        16            290-450         8.7 kB          120-160
so images go 4 frames per chunk, blosc-zstd level 3 + bitshuffle; low-dimensional
keys 1024 steps per chunk, blosc-lz4 + byte shuffle. Random windows from zarr are
~1000x slower than from memory: train from memory (SequenceDataset in_memory=True).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robotlearn.envs.interface import ActionSpec, EnvInfo

LAYOUT_VERSION = 1
DATA, META = "data", "meta"
EPISODE_ENDS = "meta/episode_ends"
IMAGE_PREFIX = "images/"

# Per-episode metadata arrays every robotlearn dataset has: name -> (dtype, fill for unknown).
META_FIELDS: dict[str, tuple[str, Any]] = {
    "success": ("bool", False),
    "length": ("int64", 0),
    "source": ("int8", -1),
    "policy_version": ("int64", -1),
    "start_time": ("float64", np.nan),
    "end_time": ("float64", np.nan),
    "terminated": ("bool", False),
}
SOURCES = ("human", "scripted", "policy")

IMAGE_CHUNK_FRAMES = 4
LOWDIM_CHUNK_STEPS = 1024
META_CHUNK = 1024


class DatasetError(ValueError):
    """A dataset (or data given to one) that is not what the layout promises; says what and where."""


def is_image_key(key: str, shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return key.startswith(IMAGE_PREFIX) or (np.dtype(dtype) == np.uint8 and len(shape) == 3 and shape[-1] in (1, 3))


def compressor(image: bool, zarr_format: int = 3):
    """blosc-zstd + bitshuffle for uint8 frames, blosc-lz4 + shuffle for low-dim floats."""
    cname, clevel, shuffle = ("zstd", 3, "bitshuffle") if image else ("lz4", 5, "shuffle")
    if zarr_format == 2:
        import numcodecs

        return numcodecs.Blosc(cname=cname, clevel=clevel, shuffle={"shuffle": 1, "bitshuffle": 2}[shuffle])
    from zarr.codecs import BloscCodec

    return BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle)


def create_data_array(group: zarr.Group, key: str, shape: tuple[int, ...], dtype, image_chunk_frames: int = IMAGE_CHUNK_FRAMES):
    image = is_image_key(key, shape, dtype)
    t_chunk = image_chunk_frames if image else LOWDIM_CHUNK_STEPS
    fmt = group.metadata.zarr_format
    return group.create_array(
        f"{DATA}/{key}", shape=(0, *shape), chunks=(t_chunk, *shape), dtype=dtype,
        compressors=compressor(image, fmt), fill_value=0,
    )


def create_meta_array(group: zarr.Group, name: str, dtype, fill, length: int = 0):
    fmt = group.metadata.zarr_format
    arr = group.create_array(
        f"{META}/{name}", shape=(length,), chunks=(META_CHUNK,), dtype=dtype,
        compressors=compressor(False, fmt), fill_value=fill,
    )
    return arr


def grow(a: zarr.Array, length: int) -> None:
    """Extend axis 0 to `length`. zarr's resize() scans every old chunk key to delete the ones
    outside the new shape, O(chunks) per call; growing deletes nothing, so skip that scan."""
    from zarr.core.sync import sync

    sync(a.async_array.resize((length, *a.shape[1:]), delete_outside_chunks=False))


def list_arrays(group: zarr.Group, prefix: str = "") -> dict[str, zarr.Array]:
    """Every array below `group`, keyed by its path relative to it ('images/front')."""
    out: dict[str, zarr.Array] = {}
    for name, member in group.members():
        if isinstance(member, zarr.Array):
            out[prefix + name] = member
        else:
            out.update(list_arrays(member, prefix + name + "/"))
    return dict(sorted(out.items()))


def open_root(path: str | Path, mode: str = "r") -> zarr.Group:
    """Open a dataset root (zarr v2 or v3), raising DatasetError for anything that is not one."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"no dataset at {p}: path does not exist")
    if not p.is_dir():
        raise DatasetError(f"{p} is not a dataset: expected a zarr directory, found a file")
    try:
        root = zarr.open_group(str(p), mode=mode)
    except Exception as e:  # zarr raises several types for "not a group"
        raise DatasetError(f"{p} is not a zarr dataset (no zarr group metadata): {e}") from e
    if EPISODE_ENDS not in root:
        raise DatasetError(f"{p} is not an episode dataset: it has no {EPISODE_ENDS} array")
    if DATA not in root:
        raise DatasetError(f"{p} is not an episode dataset: it has no {DATA}/ group")
    return root


def schema_of(arrays: dict[str, np.ndarray | zarr.Array]) -> dict[str, dict[str, Any]]:
    """Per-step schema {key: {shape, dtype}} of concatenated (N, ...) arrays."""
    return {k: {"shape": list(a.shape[1:]), "dtype": str(np.dtype(a.dtype))} for k, a in sorted(arrays.items())}


def env_info_to_dict(info: EnvInfo) -> dict[str, Any]:
    d = asdict(info)
    d["action_spec"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["action_spec"].items()}
    d["state_names"] = list(info.state_names)
    return d


def env_info_from_dict(d: dict[str, Any] | None) -> EnvInfo | None:
    if not d:
        return None
    try:
        spec = {k: tuple(v) if isinstance(v, list) else v for k, v in d["action_spec"].items()}
        return EnvInfo(name=d["name"], control_hz=float(d["control_hz"]), horizon=int(d["horizon"]),
                       action_spec=ActionSpec(**spec), config=dict(d.get("config") or {}),
                       state_names=tuple(d.get("state_names") or ()))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DatasetError(f"malformed env record {str(d)[:200]}: {type(e).__name__}: {e}") from None
