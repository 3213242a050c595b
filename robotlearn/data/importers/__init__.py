"""Converters from other recording formats into robotlearn zarr datasets."""
from robotlearn.data.importers.lerobot import import_lerobot
from robotlearn.data.importers.robomimic import import_robomimic
from robotlearn.data.importers.rosbag import import_bags

__all__ = ["import_bags", "import_lerobot", "import_robomimic"]
