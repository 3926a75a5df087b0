"""Structured pruning engine: torch-pruning's dependency graph, wrapped (not re-done)."""
