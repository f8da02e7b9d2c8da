"""Text -> facet vectors, and what is read off texts: entities, finance sentiment, discovered
topics. Knows nothing of Kafka or FAISS."""

from encoders.config import ENCODER_DTYPES, EncoderConfig
from encoders.errors import EntityTableError, ModelLoadError
from encoders.facet_encoder import FacetEncoder, FacetVectors
from encoders.heads import FacetHead, SentimentHead, StyleHead, TopicHead

__all__ = [
    "ENCODER_DTYPES",
    "EncoderConfig",
    "EntityTableError",
    "FacetEncoder",
    "FacetHead",
    "FacetVectors",
    "ModelLoadError",
    "SentimentHead",
    "StyleHead",
    "TopicHead",
]
