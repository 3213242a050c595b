"""Converters from robotlearn zarr datasets into other formats."""
from robotlearn.data.exporters.lerobot import LeRobotExportConfig, export_lerobot

__all__ = ["LeRobotExportConfig", "export_lerobot"]
