"""Versioned byte messages for every transport: safetensors payload + JSON metadata.

No pickle crosses a process or machine boundary. Every message carries its
kind and schema version so a mismatched peer fails loudly instead of
mis-decoding.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

SCHEMA_VERSION = 1


class MessageError(ValueError):
    """A byte message that is not what the receiver expects."""


def _encode(kind: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    header = {"kind": kind, "schema": str(SCHEMA_VERSION), "meta": json.dumps(meta)}
    return st_save(arrays, metadata=header)


def _decode(kind: str, payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if len(payload) < 8:
        raise MessageError(f"{kind} message of {len(payload)} bytes is too short to be safetensors")
    n = int.from_bytes(payload[:8], "little")
    try:
        header = json.loads(payload[8 : 8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise MessageError(f"{kind} message has a corrupt header: {e}") from e
    md = header.get("__metadata__", {})
    if md.get("kind") != kind:
        raise MessageError(f"expected a {kind!r} message, got kind={md.get('kind')!r}")
    if md.get("schema") != str(SCHEMA_VERSION):
        raise MessageError(f"{kind} message has schema {md.get('schema')!r}, this build speaks {SCHEMA_VERSION}")
    return st_load(bytes(payload)), json.loads(md.get("meta", "{}"))


def encode_batch(arrays: dict[str, np.ndarray], **meta: Any) -> bytes:
    """A batch of transitions/steps: equal-length arrays keyed like the zarr dataset."""
    lens = {k: len(v) for k, v in arrays.items()}
    if len(set(lens.values())) > 1:
        raise MessageError(f"batch arrays differ in length: {lens}")
    return _encode("batch", arrays, meta)


def decode_batch(payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    return _decode("batch", payload)


def encode_weights(version: int, tensors: dict[str, np.ndarray], **meta: Any) -> bytes:
    return _encode("weights", tensors, {"version": int(version), **meta})


def decode_weights(payload: bytes) -> tuple[int, dict[str, np.ndarray], dict[str, Any]]:
    arrays, meta = _decode("weights", payload)
    return int(meta.pop("version")), arrays, meta
