"""Episode datasets on disk (zarr) and the samplers that feed imitation and RL.

Layout and crash-safety rules: robotlearn/data/layout.py. `SequenceDataset` (torch)
is imported lazily so recording processes do not pay for importing torch.
"""
from robotlearn.data.layout import DatasetError
from robotlearn.data.reader import EpisodeDataset
from robotlearn.data.transitions import MixedSampler, PooledSampler, TransitionBuffer
from robotlearn.data.writer import EpisodeWriter

__all__ = ["DatasetError", "EpisodeDataset", "EpisodeWriter", "MixedSampler", "PooledSampler", "SequenceDataset", "TransitionBuffer"]


def __getattr__(name: str):
    if name == "SequenceDataset":
        from robotlearn.data.sequence import SequenceDataset

        return SequenceDataset
    raise AttributeError(f"module 'robotlearn.data' has no attribute {name!r}")
