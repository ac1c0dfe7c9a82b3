"""Commissions (filled by the commissions work)."""
__all__: list[str] = []
