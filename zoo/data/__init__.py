"""Datasets and Lightning datamodules, reading real data from ``ZOO_DATA``."""

from zoo.data.model_files import resolve_model_files
from zoo.data.paths import DatasetNotFoundError, data_root, find_data, resolve_path

__all__ = ["DatasetNotFoundError", "data_root", "find_data", "resolve_path", "resolve_model_files"]
