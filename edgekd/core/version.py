"""The package version, in core so that any layer can state it without importing the front door."""

__version__ = "0.1.0"
