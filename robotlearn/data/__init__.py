"""Episode datasets on disk (zarr) and the samplers that feed imitation and RL.

Layout and crash-safety rules: robotlearn/data/layout.py.
"""
from robotlearn.data.layout import DatasetError
from robotlearn.data.reader import EpisodeDataset
from robotlearn.data.sequence import SequenceDataset
from robotlearn.data.transitions import MixedSampler, TransitionBuffer
from robotlearn.data.writer import EpisodeWriter

__all__ = ["DatasetError", "EpisodeDataset", "EpisodeWriter", "MixedSampler", "SequenceDataset", "TransitionBuffer"]
