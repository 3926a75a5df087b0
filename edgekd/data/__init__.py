"""Data sets held in memory as uint8 tensors, batched and augmented on the device."""

from edgekd.data.bundle import DataBundle, load_data

__all__ = ["DataBundle", "load_data"]
