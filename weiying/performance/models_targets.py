"""Targets (filled by the targets work)."""
__all__: list[str] = []
