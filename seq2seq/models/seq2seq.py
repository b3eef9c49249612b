"""The encoder-decoder composite and :func:`build_model`, which makes one from a ModelConfig."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.models.bottleneck import Bottleneck
from seq2seq.models.bow import BagOfWordsDecoder
from seq2seq.models.classifier import Classifier
from seq2seq.models.context import ContextTarget
from seq2seq.models.decoders import GRUDecoder, TransformerDecoder
from seq2seq.models.embeddings import make_embedding
from seq2seq.models.encoders import GRUEncoder, TransformerEncoder
from seq2seq.models.types import Composite, Decoder, Encoded, Encoder


class Seq2SeqModel(Composite):
    """An encoder and a decoder. ``encode`` is the way from one to the other: training then
    runs ``decoder`` on the whole target, search calls ``decoder.init_state`` / ``decoder.step``.

    With a :class:`ContextTarget` the halves meet through a K-dimensional interface vector
    (``context_head`` on the encoder side, ``context_input`` on the decoder side; see
    ``context.py``), which staged training fits to given vectors. With a :class:`Bottleneck`
    (autoencoders) the context vector is a variational sample or a binary code.
    """

    # The model's two halves as lists of submodule names: what ``train.freeze`` freezes and
    # what loading an encoder or a decoder from another checkpoint copies.
    PARTS = {"encoder": ("encoder", "context_head", "bottleneck"), "decoder": ("context_input", "decoder")}

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        pad_id: int = 0,
        context_target: Optional[ContextTarget] = None,
        bottleneck: Optional[Bottleneck] = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.pad_id = pad_id
        self.context_target = context_target
        self.bottleneck = bottleneck
        self.context_head: Optional[nn.Linear] = None
        self.context_input: Optional[nn.Linear] = None
        if context_target is not None:
            self.context_head = nn.Linear(encoder.context_dim, context_target.dim)
            self.context_input = nn.Linear(context_target.dim, encoder.context_dim)

    def encode(self, src: Tensor, src_mask: Tensor) -> Encoded:
        """The one way from source to decoder: src (B, S) ids, src_mask (B, S) bool -> Encoded.

        Through the interface vector when there is a context target (``from_interface`` of the
        activated ``to_interface``), through the bottleneck when there is one (a variational
        one samples in training and fills ``Encoded.kl``).
        """
        encoded = self.encoder(src, src_mask)
        if self.context_target is not None:
            return self.from_interface(self.context_target.activate(self.to_interface(encoded)), encoded)
        if self.bottleneck is None:
            return encoded
        z, kl = self.bottleneck(encoded.context)  # (B, c), (B,) or None
        return Encoded(states=encoded.states, mask=encoded.mask, context=z, kl=kl)

    # The staged interface: the two halves meet through a K-dimensional vector (context.py).
    def to_interface(self, encoded: Encoded) -> Tensor:
        """Encoder side: Encoded -> raw interface outputs (B, K), what
        :meth:`ContextTarget.loss_sum` scores and ``activate`` turns into interface vectors."""
        if self.context_head is None:
            raise RuntimeError("to_interface needs a model built with a context target")
        return self.context_head(encoded.context)  # (B, K)

    def from_interface(self, vector: Tensor, encoded: Optional[Encoded] = None) -> Encoded:
        """Decoder side: interface vectors (B, K) -> the Encoded a decoder reads.

        Without ``encoded`` (a decoder trained from given context vectors) there are no
        per-position states: the decoder must not attend (``attention: none``).
        """
        if self.context_input is None:
            raise RuntimeError("from_interface needs a model built with a context target")
        context = self.context_input(vector)  # (B, c)
        if encoded is not None:
            return Encoded(states=encoded.states, mask=encoded.mask, context=context)
        return self.encoded_from_context(context)

    def encoded_from_context(self, context: Tensor) -> Encoded:
        """An :class:`Encoded` holding only a context vector (B, c) (e.g. sampled from the prior),
        for decoders without attention: the states are a single zero position, never read."""
        b = context.size(0)
        states = context.new_zeros(b, 1, self.encoder.d_model)  # (B, 1, d)
        mask = torch.ones(b, 1, dtype=torch.bool, device=context.device)
        return Encoded(states=states, mask=mask, context=context)

    def context_vectors(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, S) ids -> (B, c) deterministic sentence vectors: the context vector (mu for a
        variational bottleneck, code probabilities for a binary one)."""
        if self.context_target is not None:
            return self.encode(src, src_mask).context
        context = self.encoder(src, src_mask).context
        return context if self.bottleneck is None else self.bottleneck.features(context)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: -> logits (B, T, tgt_vocab)."""
        return self.decoder(tgt_in, self.encode(src, src_mask))


def resolve_attention(cfg: ModelConfig) -> str:
    """``auto`` -> bahdanau for a GRU decoder, multihead for a Transformer decoder."""
    if cfg.attention != "auto":
        return cfg.attention
    return "bahdanau" if cfg.decoder == "gru" else "multihead"


def resolve_pooling(cfg: ModelConfig) -> str:
    """``auto`` -> final for a GRU encoder, mean for a Transformer encoder."""
    if cfg.pooling != "auto":
        return cfg.pooling
    return "final" if cfg.encoder == "gru" else "mean"


def build_model(cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0) -> Seq2SeqModel:
    """Build the model ``cfg`` describes. Any encoder pairs with any decoder.

    - ``share_embeddings``: one embedding table for source and target (the vocabularies must
      be the same size, i.e. joint);
    - ``tie_embeddings``: the decoder's output projection is its input embedding;
    - ``context_dim=0`` -> d_model; ``embed_dropout<0`` -> dropout;
    - ``context_target_dim>0``: an interface vector between the halves (see ``context.py``).

    Initialisation: embeddings N(0, d^-0.5) with a zero padding row; Xavier uniform for the
    Transformer layers' Linear weights (zero biases); PyTorch defaults for GRU modules.
    """
    attention = resolve_attention(cfg)
    context_dim = cfg.context_dim or cfg.d_model
    embed_dropout = cfg.dropout if cfg.embed_dropout < 0 else cfg.embed_dropout
    d = cfg.d_model

    src_emb = make_embedding(src_vocab_size, d, pad_id)
    if cfg.share_embeddings:
        if src_vocab_size != tgt_vocab_size:
            raise ValueError(
                f"share_embeddings needs one joint vocabulary, but the source has {src_vocab_size} "
                f"tokens and the target {tgt_vocab_size}"
            )
        tgt_emb = src_emb
    else:
        tgt_emb = make_embedding(tgt_vocab_size, d, pad_id)

    encoder = build_encoder(cfg, src_vocab_size, pad_id, src_emb)

    decoder: Decoder
    if cfg.decoder == "gru":
        decoder = GRUDecoder(
            tgt_vocab_size,
            d,
            cfg.dec_layers,
            dropout=cfg.dropout,
            attention=attention,
            context_dim=context_dim,
            pad_id=pad_id,
            embedding=tgt_emb,
            tie_output=cfg.tie_embeddings,
            embed_dropout=embed_dropout,
        )
    elif cfg.decoder == "transformer":
        decoder = TransformerDecoder(
            tgt_vocab_size,
            d,
            cfg.dec_layers,
            cfg.heads,
            cfg.ffn_dim,
            dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout,
            positions=cfg.positions,
            max_positions=cfg.max_positions,
            attention=attention,
            context_dim=context_dim,
            pad_id=pad_id,
            embedding=tgt_emb,
            tie_output=cfg.tie_embeddings,
            embed_dropout=embed_dropout,
        )
    elif cfg.decoder == "bow":
        decoder = BagOfWordsDecoder(tgt_vocab_size, context_dim, cfg.dropout)
    else:
        raise ValueError(f"unknown decoder '{cfg.decoder}' (transformer, gru or bow)")

    if cfg.item_classes:
        from seq2seq.models.vision import ItemClassSeq2Seq  # vision.py imports this module

        return ItemClassSeq2Seq(encoder, decoder, cfg.item_classes, cfg.context_target_blocks, pad_id)
    context_target = None
    if cfg.context_target_dim:
        context_target = ContextTarget(cfg.context_target_dim, cfg.context_target_blocks, cfg.context_target_loss)
    return Seq2SeqModel(encoder, decoder, pad_id, context_target, build_bottleneck(cfg))


def build_bottleneck(cfg: ModelConfig) -> Optional[Bottleneck]:
    """The context vector's bottleneck module (None for ``plain``)."""
    if cfg.bottleneck == "plain":
        return None
    return Bottleneck(cfg.bottleneck, cfg.context_dim or cfg.d_model, cfg.binary_noise, cfg.binary_estimator)


def build_encoder(
    cfg: ModelConfig, src_vocab_size: int, pad_id: int = 0, embedding: Optional[nn.Embedding] = None
) -> Encoder:
    """The encoder ``cfg`` describes (its embedding table given, or a new one). An image or
    vector encoder (``cnn``, ``mlp``) has no embedding table: see :func:`build_item_encoder`."""
    if cfg.encoder in ("cnn", "mlp"):
        return build_item_encoder(cfg)
    pooling = resolve_pooling(cfg)
    context_dim = cfg.context_dim or cfg.d_model
    embed_dropout = cfg.dropout if cfg.embed_dropout < 0 else cfg.embed_dropout
    d = cfg.d_model
    src_emb = embedding if embedding is not None else make_embedding(src_vocab_size, d, pad_id)
    encoder: Encoder
    if cfg.encoder == "gru":
        encoder = GRUEncoder(
            src_vocab_size,
            d,
            cfg.enc_layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout,
            context_dim=context_dim,
            pooling=pooling,
            pad_id=pad_id,
            embedding=src_emb,
            embed_dropout=embed_dropout,
        )
    elif cfg.encoder == "transformer":
        encoder = TransformerEncoder(
            src_vocab_size,
            d,
            cfg.enc_layers,
            cfg.heads,
            cfg.ffn_dim,
            dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout,
            positions=cfg.positions,
            max_positions=cfg.max_positions,
            context_dim=context_dim,
            pooling=pooling,
            pad_id=pad_id,
            embedding=src_emb,
            embed_dropout=embed_dropout,
        )
    else:
        raise ValueError(f"unknown encoder '{cfg.encoder}' (transformer or gru)")
    return encoder


def build_item_encoder(cfg: ModelConfig) -> Encoder:
    """A :class:`~seq2seq.models.vision.VisionEncoder` for ``cfg.item_shape`` items: a small CNN
    (``cnn``) or an MLP (``mlp``) per item, then ``cfg.item_sequence`` (none, or ``enc_layers``
    GRU / Transformer layers) over the items."""
    from seq2seq.models.vision import VisionEncoder

    if not cfg.item_shape:
        raise ValueError("model.item_shape is empty: give the shape of one image or vector ([H, W], [C, H, W], [D])")
    return VisionEncoder(
        tuple(cfg.item_shape),
        cfg.d_model,
        item=cfg.encoder,
        sequence=cfg.item_sequence,
        context_dim=cfg.context_dim,
        pooling=cfg.pooling,
        layers=cfg.enc_layers,
        heads=cfg.heads,
        ffn_dim=cfg.ffn_dim,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        max_positions=cfg.max_positions,
    )


def build_classifier(cfg: ModelConfig, vocab_size: int, num_labels: int, pad_id: int = 0) -> Classifier:
    """A classifier: the encoder (and bottleneck) ``cfg`` describes, and a head with
    ``cfg.classifier_hidden`` hidden units (0: linear) over ``num_labels`` labels."""
    encoder = build_encoder(cfg, vocab_size, pad_id)
    return Classifier(
        encoder, num_labels, build_bottleneck(cfg), cfg.classifier_hidden, cfg.dropout, cfg.classifier_features
    )
