"""`robotlearn dataset info|validate|view|import-bag|import-robomimic|import-lerobot|export-lerobot [key=value ...]`.

`keys='{img: images/front}'` reads a dataset's arrays under robotlearn names (info, validate, view,
export-lerobot) or renames LeRobot features on import-lerobot; info and validate print each array's
role (state, camera, action, reward, intervention, unused) and warn about unused arrays that look like cameras.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from robotlearn.cli.config import ConfigError, fail, load
from robotlearn.config import register_schema
from robotlearn.data import DatasetError, EpisodeDataset
from robotlearn.data.exporters.lerobot import LeRobotExportConfig
from robotlearn.data.keys import array_roles, unused_camera_warnings
from robotlearn.data.validate import disk_bytes, validate

SUBCOMMANDS = ("info", "validate", "view", "import-bag", "import-robomimic", "import-lerobot", "export-lerobot")


@dataclass
class DatasetConfig:
    path: Optional[str] = None
    episode: int = 0
    out: Optional[str] = None
    frames: int = 8
    fps: Optional[float] = None
    bag: Optional[str] = None
    mapping: Optional[str] = None
    success: Optional[bool] = None
    hdf5: Optional[str] = None
    overwrite: bool = False
    src: Optional[str] = None  # import-lerobot: the LeRobot folder; export-lerobot: the zarr dataset
    keys: Optional[Any] = None  # {str: str} (a typed dict would need hydra's `+keys=`); array (or LeRobot feature) -> robotlearn key, e.g. {img: images/front}
    progress: str = "auto"  # import-lerobot / export-lerobot: auto | bar | lines | off (robotlearn/progress.py)
    export: LeRobotExportConfig = field(default_factory=LeRobotExportConfig)  # export-lerobot: video and file options


register_schema("dataset_schema", DatasetConfig)  # configs/dataset.yaml composes onto it (export.* need no `+`)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return ""


def _codec(a) -> str:
    parts = []
    for c in getattr(a, "compressors", ()) or ():
        cname = getattr(c, "cname", "")
        parts.append(f"{type(c).__name__.lower().replace('codec', '')} {getattr(cname, 'value', cname)}".strip())
    return ", ".join(parts) or "none"


def roles(ds: EpisodeDataset) -> tuple[dict[str, str], list[str]]:
    """Each array's role for a policy trained on the dataset as read, and warnings about unused cameras."""
    schema = {k: (tuple(ds.array(k).shape[1:]), ds.array(k).dtype) for k in ds.keys}
    r = array_roles(schema)
    return r, unused_camera_warnings(schema, r)


def info(path: str, key_map: dict[str, str] | None = None) -> str:
    ds = EpisodeDataset(path, key_map=key_map)
    lines = []
    layout_v = ds.attrs.get("layout_version")
    lines.append(f"dataset    {ds.path} (zarr v{ds.format_version}, "
                 f"{'robotlearn layout v' + str(layout_v) if layout_v else 'foreign layout (no schema attrs)'})")
    env = ds.env_info
    if env:
        lines.append(f"env        {env.name} @ {env.control_hz:g} Hz, horizon {env.horizon}, action {env.action_spec.kind}")
    elif ds.control_hz:
        lines.append(f"rate       {ds.control_hz:g} Hz")
    lengths = np.diff(np.concatenate([[0], ds.episode_ends]))
    stats = f"; length min/mean/max {lengths.min()}/{lengths.mean():.1f}/{lengths.max()}" if ds.n_episodes else ""
    lines.append(f"episodes   {ds.n_episodes} ({ds.n_steps} steps{stats}); uncommitted tail: {ds.partial_steps} steps")
    if ds.n_episodes and "success" in ds.meta_keys:
        s = ds.meta_array("success")
        lines.append(f"success    {s.mean():.1%} ({int(s.sum())}/{len(s)})")
    if ds.n_episodes and "source" in ds.meta_keys:
        names = ds.attrs.get("categories", {}).get("source", [])
        codes, counts = np.unique(ds.meta_array("source"), return_counts=True)
        lines.append("sources    " + ", ".join(f"{names[c] if 0 <= c < len(names) else 'unknown'}: {n}"
                                               for c, n in zip(codes, counts)))
    total = disk_bytes(ds.path)
    lines.append(f"on disk    {_size(total)}" + (f" ({_size(total / ds.n_steps)} per step)" if ds.n_steps else ""))
    lines.append("")
    role, warnings = roles(ds)
    on_disk = {k: k for k in ds.keys} | {v: k for k, v in ds.key_map.items()}  # read name -> name on disk
    lines.append(f"{'key':<22}{'role':<14}{'shape':<16}{'dtype':<10}{'chunks':<20}{'compressor':<16}{'on disk':>10}")
    for k in ds.keys:
        a = ds.array(k)
        name = k if on_disk[k] == k else f"{k} <- {on_disk[k]}"
        lines.append(f"{name:<22}{role[k]:<14}{str(tuple(a.shape[1:])):<16}{str(a.dtype):<10}{str(tuple(a.chunks)):<20}"
                     f"{_codec(a):<16}{_size(disk_bytes(ds.path / 'data' / on_disk[k])):>10}")
    lines += [f"warning: {w}" for w in warnings]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SUBCOMMANDS:
        print(f"usage: robotlearn dataset {{{'|'.join(SUBCOMMANDS)}}} path=... [key=value ...]")
        return 2
    try:
        return run(argv[0], load("dataset", argv[1:], DatasetConfig))
    except (ConfigError, DatasetError, FileNotFoundError) as e:  # what a user can get wrong; bugs keep tracebacks
        fail(str(e))
    return 2


def run(sub: str, cfg: DatasetConfig) -> int:
    if cfg.keys is not None and not isinstance(cfg.keys, dict):
        raise ConfigError(f"keys={cfg.keys!r}: expected a mapping like keys='{{img: images/front, agent_pos: state}}'")
    if sub in ("import-lerobot", "export-lerobot"):
        return lerobot(sub, cfg)
    if not cfg.path:
        raise ConfigError(f"dataset {sub} needs path=<dataset.zarr>")
    if sub == "info":
        print(info(cfg.path, cfg.keys))
    elif sub == "validate":
        errors, warnings = validate(cfg.path)
        if not errors:
            ds = EpisodeDataset(cfg.path, key_map=cfg.keys)
            role, cams = roles(ds)
            warnings += cams
        for w in warnings:
            print(f"warning: {w}")
        for e in errors:
            print(f"error: {e}")
        if errors:
            print(f"{cfg.path}: INVALID ({len(errors)} problem{'s' * (len(errors) > 1)})")
            return 1
        print(f"{cfg.path}: OK ({ds.n_episodes} episodes, {ds.n_steps} steps); roles: "
              + ", ".join(f"{k} {r}" for k, r in role.items()))
    elif sub == "view":
        from robotlearn.data.view import episode_png, episode_video

        ds = EpisodeDataset(cfg.path, key_map=cfg.keys)
        out = Path(cfg.out or f"{Path(cfg.path).with_suffix('')}_ep{cfg.episode}.png")
        if out.suffix == ".png":
            episode_png(ds, cfg.episode, out, cfg.frames)
        elif out.suffix in (".mp4", ".gif"):
            episode_video(ds, cfg.episode, out, cfg.fps)
        else:
            raise ConfigError(f"view out={out}: use a .png, .mp4 or .gif file name")
        print(f"wrote {out}")
    elif sub == "import-bag":
        from robotlearn.data.importers import import_bags

        if not (cfg.bag and cfg.mapping):
            raise ConfigError("import-bag needs bag=<file.mcap or folder> and mapping=<mapping.yaml>")
        n = import_bags([cfg.bag], cfg.mapping, cfg.path, success=cfg.success, overwrite=cfg.overwrite)
        print(f"imported {n} bag(s) into {cfg.path}")
    else:
        from robotlearn.data.importers import import_robomimic

        if not cfg.hdf5:
            raise ConfigError("import-robomimic needs hdf5=<file.hdf5>")
        n = import_robomimic(cfg.hdf5, cfg.path, overwrite=cfg.overwrite)
        print(f"imported {n} robomimic demos into {cfg.path}")
    return 0


def lerobot(sub: str, cfg: DatasetConfig) -> int:
    if not (cfg.src and cfg.out):
        need = "src=<LeRobot folder> out=<dataset.zarr>" if sub == "import-lerobot" else "src=<dataset.zarr> out=<LeRobot folder>"
        raise ConfigError(f"dataset {sub} needs {need}")
    if sub == "import-lerobot":
        from robotlearn.data.importers import import_lerobot

        n = import_lerobot(cfg.src, cfg.out, key_map=cfg.keys, overwrite=cfg.overwrite, progress=cfg.progress)
        print(f"{cfg.out}: {n} episodes imported from {cfg.src}")
    else:
        from robotlearn.data.exporters import export_lerobot

        meta = export_lerobot(cfg.src, cfg.out, cfg.export, key_map=cfg.keys, overwrite=cfg.overwrite,
                              progress=cfg.progress)
        print(f"{cfg.out}: LeRobot v3.0, {meta['total_episodes']} episodes, {meta['total_frames']} frames, "
              f"{sum(f['dtype'] == 'video' for f in meta['features'].values())} camera video(s)")
    return 0
