"""Student search spaces (registry): families of architectures described by genes."""
