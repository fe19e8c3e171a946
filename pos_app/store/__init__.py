"""The till's embedded SQLite store (catalog, redemptions, sync outbox)."""

from .till_store import TillStore

__all__ = ["TillStore"]
