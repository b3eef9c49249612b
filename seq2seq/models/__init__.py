"""Encoder-decoder models: embeddings, attention, GRU and Transformer encoders/decoders.

Any encoder pairs with any decoder through :class:`Encoded` (see ``types.py``).
This package knows nothing of files, data loading, training or search.
"""

from seq2seq.models.attention import BahdanauAttention, LuongAttention, MultiHeadAttention
from seq2seq.models.bottleneck import Bottleneck
from seq2seq.models.classifier import Classifier
from seq2seq.models.decoders import GRUDecoder, TransformerDecoder
from seq2seq.models.embeddings import (
    LearnedPositions,
    SinusoidalPositions,
    TransformerEmbedding,
    make_embedding,
    make_positions,
)
from seq2seq.models.encoders import GRUEncoder, TransformerEncoder, masked_pool
from seq2seq.models.seq2seq import (
    Seq2SeqModel,
    build_classifier,
    build_encoder,
    resolve_attention,
    resolve_pooling,
)
from seq2seq.models.types import (
    Composite,
    Decoder,
    Encoded,
    Encoder,
    lengths_from_mask,
    padding_mask,
)
from seq2seq.models.vision import (  # build_model: also model.decoder=image (an image autoencoder)
    ItemClassSeq2Seq,
    VectorAutoencoder,
    VectorDecoder,
    VisionEncoder,
    build_model,
)

__all__ = [
    "BahdanauAttention",
    "Bottleneck",
    "Classifier",
    "Composite",
    "Decoder",
    "Encoded",
    "Encoder",
    "GRUDecoder",
    "GRUEncoder",
    "ItemClassSeq2Seq",
    "LearnedPositions",
    "LuongAttention",
    "MultiHeadAttention",
    "Seq2SeqModel",
    "SinusoidalPositions",
    "TransformerDecoder",
    "TransformerEmbedding",
    "TransformerEncoder",
    "VectorAutoencoder",
    "VectorDecoder",
    "VisionEncoder",
    "build_classifier",
    "build_encoder",
    "build_model",
    "lengths_from_mask",
    "make_embedding",
    "make_positions",
    "masked_pool",
    "padding_mask",
    "resolve_attention",
    "resolve_pooling",
]
