"""The encoder-decoder composite and :func:`build_model`, which makes one from a ModelConfig."""

from __future__ import annotations

from torch import Tensor, nn

from seq2seq.config import ModelConfig
from seq2seq.models.decoders import GRUDecoder, TransformerDecoder
from seq2seq.models.embeddings import make_embedding
from seq2seq.models.encoders import GRUEncoder, TransformerEncoder
from seq2seq.models.types import Decoder, Encoded, Encoder


class Seq2SeqModel(nn.Module):
    """An encoder and a decoder. Training calls ``forward``; search calls ``encode`` once and
    then ``decoder.init_state`` / ``decoder.step``."""

    def __init__(self, encoder: Encoder, decoder: Decoder, pad_id: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.pad_id = pad_id

    def encode(self, src: Tensor, src_mask: Tensor) -> Encoded:
        """src (B, S) ids, src_mask (B, S) bool -> Encoded."""
        return self.encoder(src, src_mask)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: -> logits (B, T, tgt_vocab)."""
        return self.decoder(tgt_in, self.encode(src, src_mask))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters; shared/tied ones are counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


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


def build_model(
    cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0
) -> Seq2SeqModel:
    """Build the model ``cfg`` describes. Any encoder pairs with any decoder.

    - ``share_embeddings``: one embedding table for source and target (the vocabularies must
      be the same size, i.e. joint);
    - ``tie_embeddings``: the decoder's output projection is its input embedding;
    - ``context_dim=0`` -> d_model; ``embed_dropout<0`` -> dropout.

    Initialisation: embeddings N(0, d^-0.5) with a zero padding row; Xavier uniform for the
    Transformer layers' Linear weights (zero biases); PyTorch defaults for GRU modules.
    """
    attention = resolve_attention(cfg)
    pooling = resolve_pooling(cfg)
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

    encoder: Encoder
    if cfg.encoder == "gru":
        encoder = GRUEncoder(
            src_vocab_size, d, cfg.enc_layers, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
            context_dim=context_dim, pooling=pooling, pad_id=pad_id, embedding=src_emb,
            embed_dropout=embed_dropout,
        )  # fmt: skip
    elif cfg.encoder == "transformer":
        encoder = TransformerEncoder(
            src_vocab_size, d, cfg.enc_layers, cfg.heads, cfg.ffn_dim, dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout, positions=cfg.positions,
            max_positions=cfg.max_positions, context_dim=context_dim, pooling=pooling, pad_id=pad_id,
            embedding=src_emb, embed_dropout=embed_dropout,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown encoder '{cfg.encoder}' (transformer or gru)")

    decoder: Decoder
    if cfg.decoder == "gru":
        decoder = GRUDecoder(
            tgt_vocab_size, d, cfg.dec_layers, dropout=cfg.dropout, attention=attention,
            context_dim=context_dim, pad_id=pad_id, embedding=tgt_emb, tie_output=cfg.tie_embeddings,
            embed_dropout=embed_dropout,
        )  # fmt: skip
    elif cfg.decoder == "transformer":
        decoder = TransformerDecoder(
            tgt_vocab_size, d, cfg.dec_layers, cfg.heads, cfg.ffn_dim, dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout, positions=cfg.positions,
            max_positions=cfg.max_positions, attention=attention, context_dim=context_dim,
            pad_id=pad_id, embedding=tgt_emb, tie_output=cfg.tie_embeddings, embed_dropout=embed_dropout,
        )  # fmt: skip
    else:
        raise ValueError(f"unknown decoder '{cfg.decoder}' (transformer or gru)")

    return Seq2SeqModel(encoder, decoder, pad_id)
