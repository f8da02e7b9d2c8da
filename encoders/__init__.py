"""Text -> facet vectors. Knows nothing of Kafka or FAISS."""

from encoders.config import EncoderConfig
from encoders.errors import ModelLoadError
from encoders.facet_encoder import FacetEncoder, FacetVectors
from encoders.heads import FACET_NAMES, FacetHead, SentimentHead, StyleHead, TopicHead

__all__ = [
    "FACET_NAMES",
    "EncoderConfig",
    "FacetEncoder",
    "FacetHead",
    "FacetVectors",
    "ModelLoadError",
    "SentimentHead",
    "StyleHead",
    "TopicHead",
]
