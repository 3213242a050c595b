"""Deep checks of a dataset on disk, for `robotlearn dataset validate`: every problem names its key/episode."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robotlearn.data import layout
from robotlearn.data.integrity import check_chunk_files, verify_checksums
from robotlearn.data.layout import DatasetError
from robotlearn.data.reader import scan


def validate(path: str | Path) -> tuple[list[str], list[str]]:
    """(errors, warnings). Errors make the dataset unusable or wrong; warnings are recoverable."""
    try:
        root = layout.open_root(path, mode="r")
    except DatasetError as e:
        return [str(e)], []
    snap = scan(root, "")
    errors = [e.removeprefix(": ") for e in snap.errors]
    warnings: list[str] = []
    if snap.interrupted_commit:
        warnings.append("meta/episode_ends has an interrupted commit (last entry never written); it is ignored")
    if snap.partial_steps:
        warnings.append(f"{snap.partial_steps} uncommitted steps after episode {len(snap.episode_ends) - 1} "
                        "(an interrupted recording); readers ignore them, a reopened writer drops them")
    attrs = dict(root.attrs)
    errors += _check_env_record(attrs.get("env"))
    schema = attrs.get("schema")
    if schema is None:
        warnings.append("no schema attribute: not written by robotlearn (read-only, schema inferred from arrays)")
    else:
        for key, spec in schema.items():
            if key not in snap.data:
                errors.append(f"schema key {key!r} has no data/{key} array")
                continue
            a = snap.data[key]
            if list(a.shape[1:]) != spec["shape"] or str(a.dtype) != spec["dtype"]:
                errors.append(f"data/{key} is {tuple(a.shape[1:])} {a.dtype} per step; schema says "
                              f"{tuple(spec['shape'])} {spec['dtype']}")
        extra = sorted(set(snap.data) - set(schema))
        if extra:
            warnings.append(f"data arrays {extra} are not in the schema")
    if errors:  # the per-episode checks below need consistent lengths
        return errors, warnings
    errors += check_chunk_files(Path(path), snap.data)
    if errors:  # never hand a damaged chunk to the decompressor
        return errors, warnings
    crc_errors, has_checksums = verify_checksums(Path(path), root, snap.episode_ends, snap.data)
    errors += crc_errors
    if not has_checksums:
        warnings.append("no per-episode checksums (written before they existed, or by another tool): "
                        "checked structurally only; deleted or overwritten chunks cannot be detected")
    ends = snap.episode_ends
    starts = np.concatenate([[0], ends[:-1]])
    if "length" in snap.meta:
        stored = snap.meta["length"][: len(ends)]
        for i in np.flatnonzero(stored != ends - starts)[:5]:
            errors.append(f"episode {i}: meta/length={stored[i]} but episode_ends gives {ends[i] - starts[i]} steps")
    for key, a in snap.data.items():
        if a.dtype.kind != "f":
            continue
        for i, (s, e) in enumerate(zip(starts, ends)):
            try:
                v = a[int(s):int(e)]
            except Exception as exc:  # a chunk the codec rejects (a dataset without checksums): report, never crash
                errors.append(f"data/{key}: episode {i} does not decode ({type(exc).__name__}: {exc})")
                break
            bad = ~np.isfinite(v.reshape(len(v), -1)).all(1)
            if bad.any():
                errors.append(f"data/{key}: non-finite values in episode {i} at step {int(np.argmax(bad))}")
                break
    return errors, warnings


def _special_keys(obj, where: str = "config") -> list[str]:
    """Paths of keys starting with '_' (hydra's `_target_`, `_args_`, ...) anywhere inside `obj`."""
    if isinstance(obj, dict):
        return [f"{where}.{k}" for k in obj if str(k).startswith("_")] + \
            [p for k, v in obj.items() for p in _special_keys(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _special_keys(v, f"{where}[{i}]")]
    return []


def _check_env_record(env) -> list[str]:
    """The recorded env must be data make_env will accept: a well-formed record, kwargs without `_target_`."""
    if not env:
        return []
    try:
        layout.env_info_from_dict(env)
    except DatasetError as e:
        return [f"attrs.env: {e}"]
    special = _special_keys(env.get("config") or {}, "attrs.env.config")
    if special:
        return [f"{', '.join(special)}: an env config holds only keyword arguments; robotlearn refuses to build "
                f"an env from this record (it never instantiates targets read from a dataset)"]
    return []


def disk_bytes(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
