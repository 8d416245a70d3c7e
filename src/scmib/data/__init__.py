"""Data sources, verified downloads and the common dataset format."""
