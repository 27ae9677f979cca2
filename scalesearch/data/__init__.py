"""Data: the embedded Fashion-MNIST sample, other named sets and image folders decoded at the side the
search needs (:func:`load_data`), and batches that live on the training device (:class:`DeviceData`)."""
from __future__ import annotations

from ._batches import DeviceData
from ._folder import Report, RichReport, available_memory, cache_dir, load_folder
from ._load import AUGMENTS, EMBEDDED, SPECS_HELP, Dataset, data_shape, load_data, pool_size, subset

__all__ = ["AUGMENTS", "EMBEDDED", "SPECS_HELP", "Dataset", "DeviceData", "Report", "RichReport", "available_memory",
           "cache_dir", "data_shape", "load_data", "pool_size", "load_folder", "subset"]
