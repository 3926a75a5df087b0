"""Core layer: config, registries, run directory, profiles, errors. Imports nothing above it."""
