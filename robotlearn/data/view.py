"""Pictures of one episode: a PNG (camera strips + state/action curves) or an MP4/GIF of the cameras."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from robotlearn.data.layout import DatasetError, is_image_key
from robotlearn.data.reader import EpisodeDataset


def camera_keys(ds: EpisodeDataset) -> list[str]:
    return [k for k in ds.keys if ds.array(k).ndim == 4 and is_image_key(k, ds.array(k).shape[1:], ds.array(k).dtype)]


def as_uint8(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames
    hi = 255.0 if frames.max() > 1.0 else 1.0  # float images in [0, 1] or [0, 255] (diffusion_policy stores)
    return np.clip(frames / hi * 255.0, 0, 255).astype(np.uint8)


def episode_png(ds: EpisodeDataset, episode: int, out: str | Path, max_frames: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cams = camera_keys(ds)
    curves = [k for k in ("state", "action") if k in ds.keys]
    ep = ds.get_episode(episode, keys=cams + curves)
    T = ds.episode_meta(episode)["length"]
    hz = ds.control_hz or 1.0
    t = np.arange(T) / hz
    fig, axes = plt.subplots(len(cams) + len(curves), 1, figsize=(12, 2.2 * len(cams) + 2.6 * len(curves)), squeeze=False)
    picks = np.unique(np.linspace(0, T - 1, min(max_frames, T)).astype(int))
    for ax, cam in zip(axes[: len(cams), 0], cams):
        ax.imshow(np.concatenate(list(as_uint8(ep[cam][picks])), axis=1))
        ax.set_title(f"{cam}  (steps {', '.join(map(str, picks))})", fontsize=9)
        ax.axis("off")
    for ax, key in zip(axes[len(cams):, 0], curves):
        v = ep[key].reshape(T, -1)
        ax.plot(t, v, lw=1)
        ax.set(ylabel=key, xlabel="time [s]" if ds.control_hz else "step")
        if v.shape[1] <= 10:
            ax.legend([f"{key}[{i}]" for i in range(v.shape[1])], fontsize=7, ncol=min(v.shape[1], 5), loc="upper right")
    m = ds.episode_meta(episode)
    fig.suptitle(f"{ds.path.name} episode {episode}: {T} steps, success={m['success']}, source={m['source']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)


def episode_video(ds: EpisodeDataset, episode: int, out: str | Path, fps: float | None = None) -> Path:
    """All cameras side by side, one frame per step (.mp4 via ffmpeg, or .gif)."""
    import imageio.v2 as imageio

    cams = camera_keys(ds)
    if not cams:
        raise DatasetError(f"{ds.path} has no camera keys (images/<cam>) to make a video of; write a .png instead")
    ep = ds.get_episode(episode, keys=cams)
    frames = np.concatenate([as_uint8(ep[c]) for c in cams], axis=2)  # (T, H, W * n_cams, 3)
    fps = fps or ds.control_hz or 10.0
    out = Path(out)
    if out.suffix == ".gif":
        imageio.mimsave(out, list(frames), duration=1000.0 / fps, loop=0)
    else:
        pad = (-frames.shape[1] % 16, -frames.shape[2] % 16)  # codec-friendly frame size
        frames = np.pad(frames, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)))
        imageio.mimsave(out, list(frames), fps=fps, macro_block_size=1)
    return out
