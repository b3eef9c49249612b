"""Real-valued inputs and outputs: images and vectors in, images and vectors out.

Inputs keep the token encoders' contract. An encoder's ``src`` is a float tensor of *items* in
place of token ids, (B, S, *item_shape) with ``src_mask`` (B, S) True at real items: one image
per position (item_shape (H, W) or (C, H, W)) or one vector (item_shape (D,)). Each item is
encoded on its own (a small CNN per image, an MLP or one Linear per vector) into a d_model code,
then optionally a GRU or Transformer runs over the sequence of codes (``GRUEncoder`` /
``TransformerEncoder.encode_vectors``). The result is an :class:`Encoded` like any token
encoder's, so :class:`VisionEncoder` pairs with the GRU and Transformer decoders, with or
without attention, inside :class:`Seq2SeqModel` with its interface vector and bottleneck. One
image is a sequence of one (:func:`as_items`).

:class:`ItemClassSeq2Seq` is the staged interface the seed describes for digit images: the
interface vector is one class per item (the digit each image shows), read off each item's
state and laid out in place-value blocks, the layout of the text staged study's vector.

Outputs: :class:`VectorDecoder` emits one vector or image per example from the context vector
in one shot (MSE loss, :func:`mse_loss`); :class:`VectorAutoencoder` joins an encoder, an
optional bottleneck and that head (image autoencoders, the linear autoencoder against PCA;
``downsample``: super-resolution). :func:`build_image_autoencoder` builds one from a config
(``model.decoder: image``), :func:`build_model` is what checkpoints and objectives call, and
:func:`corrupt` is the denoising noise (gaussian, masking).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seq2seq.models.bottleneck import Bottleneck
from seq2seq.models.context import ContextTarget
from seq2seq.models.encoders import GRUEncoder, TransformerEncoder, masked_pool
from seq2seq.models.seq2seq import Seq2SeqModel
from seq2seq.models.types import Composite, Decoder, Encoded, Encoder

ITEM_ENCODERS = ("cnn", "mlp", "linear")
SEQUENCES = ("none", "gru", "transformer")


def as_items(x: Tensor, item_ndim: int) -> tuple[Tensor, Tensor]:
    """One item per example -> a sequence of one: x (B, *item_shape) -> (src (B, 1, *item_shape),
    src_mask (B, 1) all True). ``item_ndim``: 2 for (H, W) images, 1 for vectors."""
    if x.dim() != item_ndim + 1:
        raise ValueError(f"expected (batch, {item_ndim}-d item), got shape {tuple(x.shape)}")
    return x.unsqueeze(1), torch.ones(x.size(0), 1, dtype=torch.bool, device=x.device)


class ConvNet(nn.Module):
    """A small CNN for one image: (N, C, H, W) -> (N, d).

    conv 3x3 (``channels[0]``) -> ReLU -> conv 3x3 (``channels[1]``) -> ReLU -> 2x2 max-pool ->
    flatten -> dropout -> Linear -> ReLU -> Linear(d). For 8x8 digits: 64 x 4 x 4 features.
    No batch norm, so an image encodes the same alone or in any batch.
    """

    def __init__(self, in_channels: int, height: int, width: int, d_out: int, channels=(32, 64), dropout=0.1):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = c2 * (height // 2) * (width // 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, d_out), nn.ReLU())
        self.out = nn.Linear(d_out, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.head(self.features(x)))  # (N, d)


class VisionEncoder(Encoder):
    """Items (images or vectors) -> :class:`Encoded`; see the module docstring.

    - ``item_shape``: (H, W) or (C, H, W) for images, (D,) for vectors;
    - ``item``: ``cnn`` (images; :class:`ConvNet`), ``mlp`` (Linear -> ReLU -> dropout -> Linear;
      images are flattened) or ``linear`` (one Linear: a linear encoder, e.g. against PCA);
    - ``sequence``: ``none`` (states are the item codes), ``gru`` (a (bi)GRU over them, as
      :class:`GRUEncoder`) or ``transformer`` (as :class:`TransformerEncoder`);
    - context: with ``sequence`` the sequence encoder's (``pooling`` as there); without, a
      masked ``mean`` or ``max`` of the codes (for one item: its code) -> Linear ->
      ``context_activation`` (``tanh`` or ``none``) -> ``context_dim``.

    Only real items go through the item encoder: padding never changes a real item's code, and
    an empty row encodes to zeros.
    """

    def __init__(
        self,
        item_shape: tuple[int, ...],
        d_model: int = 128,
        item: str = "cnn",
        sequence: str = "none",
        context_dim: int = 0,
        pooling: str = "auto",
        layers: int = 1,
        heads: int = 4,
        ffn_dim: int = 0,
        bidirectional: bool = True,
        dropout: float = 0.1,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 0,
        context_activation: str = "tanh",
        max_positions: int = 64,
    ) -> None:
        super().__init__()
        if item not in ITEM_ENCODERS:
            raise ValueError(f"unknown item encoder '{item}' ({', '.join(ITEM_ENCODERS)})")
        if sequence not in SEQUENCES:
            raise ValueError(f"unknown sequence encoder '{sequence}' ({', '.join(SEQUENCES)})")
        if context_activation not in ("tanh", "none"):
            raise ValueError(f"context_activation must be tanh or none, got '{context_activation}'")
        self.item_shape = tuple(int(n) for n in item_shape)
        self.d_model = d_model
        self.context_dim = context_dim or d_model
        self.item_kind, self.sequence_kind = item, sequence
        numel = math.prod(self.item_shape)
        if item == "cnn":
            if len(self.item_shape) not in (2, 3):
                raise ValueError(f"a cnn item encoder reads (H, W) or (C, H, W) images, not {self.item_shape}")
            c, h, w = (1, *self.item_shape) if len(self.item_shape) == 2 else self.item_shape
            self.item: nn.Module = nn.Sequential(
                nn.Unflatten(1, (c, h, w)), ConvNet(c, h, w, d_model, channels, dropout)
            )
        elif item == "mlp":
            width = hidden or 2 * d_model
            self.item = nn.Sequential(
                nn.Linear(numel, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, d_model)
            )
        else:
            self.item = nn.Linear(numel, d_model)

        # The sequence encoders' token tables have one (padding) row, never read: encode_vectors
        # takes the item codes in their place.
        self.sequence: Optional[Encoder] = None
        self.context_proj: Optional[nn.Linear] = None
        if sequence == "gru":
            self.sequence = GRUEncoder(
                1, d_model, layers, bidirectional, dropout, self.context_dim, "final" if pooling == "auto" else pooling
            )
        elif sequence == "transformer":
            self.sequence = TransformerEncoder(
                1,
                d_model,
                layers,
                heads,
                ffn_dim or 4 * d_model,
                dropout,
                max_positions=max_positions,
                context_dim=self.context_dim,
                pooling="mean" if pooling == "auto" else pooling,
            )
        else:
            self.pooling = "mean" if pooling in ("auto", "final") else pooling
            self.context_proj = nn.Linear(d_model, self.context_dim)
        self.context_activation = context_activation

    def encode_items(self, items: Tensor) -> Tensor:
        """(N, *item_shape) float -> (N, d_model) codes, one item at a time (no mixing)."""
        if tuple(items.shape[1:]) != self.item_shape:
            raise ValueError(f"items of shape {tuple(items.shape[1:])}, but this encoder reads {self.item_shape}")
        return self.item(items.reshape(items.size(0), -1))

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        """src (B, S, *item_shape) float, src_mask (B, S) bool -> Encoded (states (B, S, d))."""
        b, s = src_mask.shape
        if tuple(src.shape[:2]) != (b, s):
            raise ValueError(f"src of shape {tuple(src.shape)} does not match src_mask {tuple(src_mask.shape)}")
        codes = self.encode_items(src[src_mask])  # (N real, d)
        states = codes.new_zeros(b, s, self.d_model).index_put((src_mask.nonzero(as_tuple=True)), codes)
        if self.sequence is not None:
            return self.sequence.encode_vectors(states, src_mask)
        assert self.context_proj is not None
        context = self.context_proj(masked_pool(states, src_mask, self.pooling))  # (B, c)
        if self.context_activation == "tanh":
            context = torch.tanh(context)
        return Encoded(states=states, mask=src_mask, context=context)


class ItemClassSeq2Seq(Seq2SeqModel):
    """An encoder-decoder whose interface vector is one class per input item.

    ``context_head`` reads each item's state (B, S, d) -> (B, S, classes) logits. Item j of a
    row of L items goes to block L-1-j (``align="right"``, the last item in block 0: units
    first, as the text staged study's place-value vector) or block j (``align="left"``);
    blocks without an item hold the extra class ``classes`` ("no item here"), with certainty.
    So there are ``blocks`` blocks of ``classes + 1`` (9 x 11 for numbers of up to 9 digit
    images: the same vector as ``place_value_vectors`` in ``recipes/digits_to_words``).

    Staged training fits ``context_head`` to each item's label (:meth:`item_logits`) and the
    decoder to given vectors (:meth:`from_interface`); ``encode`` joins them, as in
    :class:`Seq2SeqModel`.
    """

    EMPTY_LOGIT = 30.0  # the "no item" class's logit where there is no item (softmax ~ 1)

    def __init__(
        self, encoder: Encoder, decoder: Decoder, classes: int, blocks: int, pad_id: int = 0, align: str = "right"
    ) -> None:
        if align not in ("right", "left"):
            raise ValueError(f"align must be right or left, got '{align}'")
        super().__init__(encoder, decoder, pad_id, ContextTarget(blocks * (classes + 1), blocks, "ce"))
        self.classes, self.blocks, self.align = classes, blocks, align
        self.context_head = nn.Linear(encoder.d_model, classes)  # per item, on the states

    def item_logits(self, encoded: Encoded) -> Tensor:
        """-> (B, S, classes): each item's class logits (padding rows are meaningless)."""
        assert self.context_head is not None
        return self.context_head(encoded.states)

    def to_interface(self, encoded: Encoded) -> Tensor:
        """-> (B, blocks * (classes + 1)) raw interface outputs (logits per block)."""
        logits = self.item_logits(encoded)  # (B, S, C)
        b, s, c = logits.shape
        mask = encoded.mask
        lengths = mask.sum(dim=1)  # (B,)
        if int(lengths.max()) > self.blocks:
            raise ValueError(f"{int(lengths.max())} items, but the interface has {self.blocks} blocks")
        positions = torch.arange(s, device=mask.device).unsqueeze(0)  # (1, S)
        places = (lengths.unsqueeze(1) - 1 - positions) if self.align == "right" else positions.expand(b, s)
        rows, cols = mask.nonzero(as_tuple=True)
        real = torch.cat([logits[rows, cols], logits.new_full((rows.numel(), 1), -self.EMPTY_LOGIT)], dim=1)
        empty = logits.new_full((self.classes + 1,), -self.EMPTY_LOGIT)
        empty[self.classes] = self.EMPTY_LOGIT
        out = empty.repeat(b, self.blocks, 1).index_put((rows, places[rows, cols]), real)
        return out.reshape(b, self.blocks * (c + 1))


class VectorDecoder(nn.Module):
    """One vector or image per example from a context vector, in one shot: (B, c) -> (B, *shape).

    ``hidden`` > 0: Linear -> ReLU -> dropout -> Linear; 0: one Linear (a linear decoder).
    ``output``: ``sigmoid`` (values in [0, 1], e.g. pixel intensities) or ``none``.
    Trained with :func:`mse_loss` against the target.
    """

    def __init__(
        self, context_dim: int, shape: tuple[int, ...], hidden: int = 256, output: str = "sigmoid", dropout=0.0
    ) -> None:
        super().__init__()
        if output not in ("sigmoid", "none"):
            raise ValueError(f"output must be sigmoid or none, got '{output}'")
        self.shape = tuple(int(n) for n in shape)
        self.output = output
        numel = math.prod(self.shape)
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(context_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, numel)
            )
        else:
            self.net = nn.Linear(context_dim, numel)

    def forward(self, context: Tensor) -> Tensor:
        out = self.net(context).view(context.size(0), *self.shape)
        return torch.sigmoid(out) if self.output == "sigmoid" else out


def mse_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per example: (B, *shape) x 2 -> (B,), mean over each example's values."""
    return (output.float() - target.float()).pow(2).flatten(1).mean(dim=1)


class VectorAutoencoder(Composite):
    """encoder (items -> Encoded) -> optional bottleneck on the context -> VectorDecoder.

    ``forward(src, src_mask) -> output (B, *shape)``; the same ``PARTS`` names as
    :class:`Seq2SeqModel` for the encoder half, so its encoder can be frozen or copied.
    ``downsample`` > 1 (super-resolution): the encoder reads images mean-pooled by that factor;
    full-size inputs (the decoder's shape) are pooled here, smaller ones read as they are.
    """

    PARTS = {"encoder": ("encoder", "bottleneck"), "decoder": ("decoder",)}

    def __init__(
        self,
        encoder: Encoder,
        decoder: VectorDecoder,
        bottleneck: Optional[Bottleneck] = None,
        downsample: int = 1,
    ) -> None:
        super().__init__()
        self.encoder, self.decoder, self.bottleneck = encoder, decoder, bottleneck
        self.downsample = int(downsample)

    def inputs(self, src: Tensor) -> Tensor:
        """``src`` (B, S, *shape) as the encoder reads it: full-size images pooled (``downsample``)."""
        if self.downsample > 1 and tuple(src.shape[2:]) == self.decoder.shape:
            b, s = src.shape[:2]
            flat = src.reshape(b * s, -1, *src.shape[-2:])  # (N, C, H, W)
            pooled = F.avg_pool2d(flat, self.downsample)
            return pooled.reshape(b, s, *src.shape[2:-2], *pooled.shape[-2:])
        return src

    def code(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """-> (z (B, c), kl (B,) or None): the context vector after the bottleneck."""
        context = self.encoder(self.inputs(src), src_mask).context
        return (context, None) if self.bottleneck is None else self.bottleneck(context)

    def context_vectors(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """(B, c) deterministic codes: the context vector (mu of a variational bottleneck, the
        code probabilities of a binary one)."""
        context = self.encoder(self.inputs(src), src_mask).context
        return context if self.bottleneck is None else self.bottleneck.features(context)

    def forward(self, src: Tensor, src_mask: Tensor) -> Tensor:
        return self.decoder(self.code(src, src_mask)[0])

    def loss(self, src: Tensor, src_mask: Tensor, target: Tensor) -> Tensor:
        """Mean MSE over the batch (+ the mean KL of a variational bottleneck)."""
        z, kl = self.code(src, src_mask)
        loss = mse_loss(self.decoder(z), target).mean()
        return loss if kl is None else loss + kl.mean()


def corrupt(x: Tensor, kind: str, level: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """Noise for denoising training: ``gaussian`` (x + N(0, level^2), clipped to [0, 1]) or
    ``masking`` (each value set to 0 with probability ``level``); ``none``: x itself."""
    if kind == "none" or level <= 0:
        return x
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
        return (x + level * noise.to(x.dtype)).clamp(0.0, 1.0)
    if kind == "masking":
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
        return x * keep.to(x.dtype)
    raise ValueError(f"unknown image noise '{kind}' (none, gaussian, masking)")


def build_image_autoencoder(cfg) -> VectorAutoencoder:
    """The image autoencoder a :class:`~seq2seq.config.ModelConfig` with ``decoder: image``
    describes: a :class:`VisionEncoder` (``encoder`` cnn or mlp, one item, a code of
    ``context_dim`` without activation) of the image pooled by ``downsample``, the bottleneck,
    and a :class:`VectorDecoder` (hidden ``d_model``, ``image_output`` pixels) of ``item_shape``."""
    from seq2seq.models.seq2seq import build_bottleneck

    if not cfg.item_shape:
        raise ValueError("model.item_shape is empty: give the shape of one image ([H, W] or [C, H, W]) or vector")
    shape = tuple(int(n) for n in cfg.item_shape)
    k = int(cfg.downsample)
    if k > 1 and (len(shape) < 2 or shape[-1] % k or shape[-2] % k):
        raise ValueError(f"model.downsample={k} must divide the image's height and width {shape}")
    in_shape = (*shape[:-2], shape[-2] // k, shape[-1] // k) if k > 1 else shape
    context_dim = cfg.context_dim or cfg.d_model
    encoder = VisionEncoder(
        in_shape, cfg.d_model, item=cfg.encoder, context_dim=context_dim, dropout=cfg.dropout, context_activation="none"
    )
    decoder = VectorDecoder(context_dim, shape, hidden=cfg.d_model, output=cfg.image_output, dropout=cfg.dropout)
    return VectorAutoencoder(encoder, decoder, build_bottleneck(cfg), downsample=k)


def build_model(cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0) -> Composite:
    """:func:`seq2seq.models.seq2seq.build_model`, and for ``model.decoder: image`` an image
    autoencoder (:func:`build_image_autoencoder`): what checkpoints and objectives build."""
    if cfg.decoder == "image":
        return build_image_autoencoder(cfg)
    from seq2seq.models.seq2seq import build_model as build_seq2seq

    return build_seq2seq(cfg, src_vocab_size, tgt_vocab_size, pad_id)


def item_cross_entropy(logits: Tensor, mask: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of per-item logits (B, S, C) against labels (B, S) at real items."""
    return F.cross_entropy(logits[mask].float(), labels[mask])
