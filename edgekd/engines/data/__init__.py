"""Data sets: in memory as uint8 tensors (small), or streamed from image folders (large)."""

from edgekd.engines.data.bundle import Data, DataBundle, load_data

__all__ = ["Data", "DataBundle", "load_data"]
