"""Silent-corruption checks: a CRC32 per committed episode and array, and blosc chunk headers.

The writer folds every block it appends into a running CRC32 per array and stores the
episode's values in `meta/checksums` ((E, K) uint32, K = `attrs.checksums.keys`) with the
commit. A deleted chunk file reads back as the fill value and overwritten bytes as plausible
numbers; both change the CRC. A truncated chunk is caught from its blosc header (the
compressed size it declares is not the file's size) before anything decodes it, so a damaged
file never reaches the decompressor.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import zarr

CHECKSUMS = "checksums"  # meta/checksums
ALGORITHM = "crc32"
_METADATA_FILES = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def crc32(block: np.ndarray, running: int = 0) -> int:
    """CRC32 of an array's bytes in C order, continuing `running` (blocks in order = the whole)."""
    return zlib.crc32(np.ascontiguousarray(block).view(np.uint8).reshape(-1), running)


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(p for p in array_dir.rglob("*") if p.is_file() and p.name not in _METADATA_FILES
                  and not p.name.endswith(".partial"))


def _stored(chunk: Path) -> bool:
    """A v3 chunk (`c/<i>` file, or a `c/<i>/...` directory holding one) exists on disk."""
    return chunk.is_file() or (chunk.is_dir() and any(p.is_file() for p in chunk.rglob("*")))


def _is_blosc(a: zarr.Array) -> bool:
    return any("blosc" in type(c).__name__.lower() or "blosc" in str(getattr(c, "codec_id", "")).lower()
               for c in a.compressors)


def check_chunk_files(path: Path, data: dict[str, zarr.Array]) -> list[str]:
    """Chunk files whose blosc header disagrees with their size or the array's chunk size (truncated,
    padded or foreign bytes). Reads 16 bytes per file, decodes nothing."""
    errors = []
    for key, a in data.items():
        if not _is_blosc(a):
            continue
        chunk_bytes = int(np.prod(a.chunks)) * a.dtype.itemsize
        for f in _chunk_files(path / "data" / key):
            size = f.stat().st_size
            with open(f, "rb") as fh:
                head = fh.read(16)
            if len(head) < 16:
                errors.append(f"data/{key}: chunk {f.relative_to(path)} is {size} bytes, shorter than a blosc header")
                continue
            nbytes, cbytes = int.from_bytes(head[4:8], "little"), int.from_bytes(head[12:16], "little")
            if cbytes != size or nbytes != chunk_bytes:
                errors.append(f"data/{key}: chunk {f.relative_to(path)} is corrupt: header says {cbytes} compressed / "
                              f"{nbytes} raw bytes, the file has {size} and a chunk holds {chunk_bytes}")
    return errors


def _chunks_of(a: zarr.Array, start: int, stop: int) -> range:
    c = a.chunks[0]
    return range(start // c, (stop - 1) // c + 1)


def verify_checksums(path: Path, root: zarr.Group, ends: np.ndarray, data: dict[str, zarr.Array],
                     max_errors: int = 20) -> tuple[list[str], bool]:
    """(errors, has_checksums). Recomputes every committed episode's CRC per array and names the
    array, episode and chunks of each mismatch (and which of those chunk files are missing)."""
    from robotlearn.data.layout import META

    spec = dict(root.attrs).get(CHECKSUMS)
    if not spec or f"{META}/{CHECKSUMS}" not in root:
        return [], False
    keys, stored = list(spec["keys"]), np.asarray(root[f"{META}/{CHECKSUMS}"][: len(ends)])
    errors = []
    missing = [k for k in keys if k not in data]
    if missing:
        errors.append(f"meta/checksums covers arrays {missing} that data/ does not have")
    starts = np.concatenate([[0], ends[:-1]]).astype(int)
    for j, key in enumerate(keys):
        if key in missing:
            continue
        a = data[key]
        for i, (s, e) in enumerate(zip(starts, ends.astype(int))):
            try:
                got = crc32(a[s:e])
            except Exception as exc:  # a chunk the codec cannot decode: report it, never crash
                got, why = None, f"does not decode ({type(exc).__name__}: {exc})"
            else:
                why = "checksum mismatch"
            if got == int(stored[i, j]):
                continue
            chunks = _chunks_of(a, s, e)
            gone = [c for c in chunks if not _stored(path / "data" / key / "c" / str(c))] \
                if a.metadata.zarr_format == 3 else []
            hint = f"; chunk files missing: {gone}" if gone else ""
            errors.append(f"data/{key}: episode {i} (steps {s}-{e}) {why}, in chunks {chunks.start}-{chunks.stop - 1}"
                          f" of {a.chunks[0]} steps{hint}")
            if len(errors) >= max_errors:
                return errors + ["(stopped after the first errors)"], True
    return errors, True
