"""Hash sets: the entry and category model, and one reader/writer module per exchange format."""

from opspoor.hashsets.model import KINDS, SCHEMES, Category, Entry, HashSetInfo

__all__ = ["KINDS", "SCHEMES", "Category", "Entry", "HashSetInfo"]
