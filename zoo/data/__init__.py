"""Datasets and Lightning datamodules, reading real data from ``ZOO_DATA``."""

from zoo.data.paths import DatasetNotFoundError, data_root, find_data, resolve_path

__all__ = ["DatasetNotFoundError", "data_root", "find_data", "resolve_path"]
