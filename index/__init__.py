"""Facet vectors -> FAISS item index. Knows nothing of Kafka."""

from index.config import IndexConfig
from index.errors import IndexConfigError, UnknownItem
from index.item_index import Hit, ItemIndex, PackedQuery, Query

__all__ = ["Hit", "IndexConfig", "IndexConfigError", "ItemIndex", "PackedQuery", "Query", "UnknownItem"]
