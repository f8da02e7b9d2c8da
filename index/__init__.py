"""Facet vectors -> FAISS item index. Knows nothing of Kafka."""

from index.config import IndexConfig
from index.item_index import Hit, ItemIndex, UnknownItem

__all__ = ["Hit", "IndexConfig", "ItemIndex", "UnknownItem"]
