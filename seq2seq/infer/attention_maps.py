"""Attention heat maps: which source tokens each output token looked at.

The weights come from a teacher-forced pass of the decoder over (source, output) pairs:
the GRU decoder's attention weights, or the Transformer's last-layer cross-attention
averaged over heads. Drawing needs matplotlib (``pip install seq2seq[plot]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seq2seq.data.batching import Example, collate
from seq2seq.errors import Seq2SeqError
from seq2seq.models import Seq2SeqModel
from seq2seq.models.attention import BahdanauAttention, LuongAttention


@torch.inference_mode()
def attention_weights(model: Seq2SeqModel, src: list[list[int]], tgt: list[list[int]]) -> list[np.ndarray]:
    """Per pair, a (len(tgt) + 1, len(src)) array: row t is the attention of the step that
    predicts output token t (the last row predicts EOS); rows sum to 1.

    Raises Seq2SeqError for a model without attention (it has no weights to show).
    """
    decoder = model.decoder
    captured: list[Tensor] = []
    if isinstance(getattr(decoder, "attention", None), (BahdanauAttention, LuongAttention)):
        handle = decoder.attention.register_forward_hook(lambda m, args, out: captured.append(out[1]))
    elif (
        isinstance(getattr(decoder, "layers", None), torch.nn.ModuleList) and decoder.layers[-1].cross_attn is not None
    ):
        handle = decoder.layers[-1].cross_attn.register_forward_hook(_cross_attention_hook(captured), with_kwargs=True)
    else:
        raise Seq2SeqError("this model has no attention (model.attention=none): there is nothing to plot")
    try:
        model.eval()
        batch = collate([Example(i, s, t) for i, (s, t) in enumerate(zip(src, tgt))])
        device = next(model.parameters()).device
        batch = batch.to(device)
        model.decoder(batch.tgt_in, model.encode(batch.src, batch.src_mask))
    finally:
        handle.remove()
    weights = captured[-1].float().cpu().numpy()  # (B, T, S)
    return [weights[i, : len(t) + 1, : len(s)] for i, (s, t) in enumerate(zip(src, tgt))]


def _cross_attention_hook(captured: list[Tensor]):
    """A forward hook on a cross-attention ``MultiHeadAttention`` that recomputes its weights
    (the fused attention kernel does not return them), averaged over heads: (B, T, S)."""

    def hook(module: Any, args: tuple, kwargs: dict, output: Tensor) -> None:
        x = args[0] if args else kwargs["x"]
        mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
        k, _ = kwargs.get("kv") if "kv" in kwargs else args[3]
        q = module._split(module.q_proj(x))  # (B, h, T, dh)
        scores = torch.matmul(q, k.transpose(-1, -2)) * module.d_head**-0.5  # (B, h, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        captured.append(torch.softmax(scores, dim=-1).mean(dim=1))

    return hook


def plot_attention(
    weights: np.ndarray, src_tokens: list[str], tgt_tokens: list[str], output: Path, title: str = ""
) -> Path:
    """A heat map PNG: output tokens (rows, EOS last) against source tokens (columns)."""
    from seq2seq.plots import pyplot

    plt = pyplot("--plot-attention")
    rows = [*tgt_tokens, "</s>"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(src_tokens) + 2), max(3.0, 0.3 * len(rows) + 1.5)), dpi=100)
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title[:80], fontsize=9)
    fig.tight_layout()
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, output)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return output


def write_attention_maps(translator: Any, lines: list[str], outputs: list[str], directory: Path) -> int:
    """One heat map per non-empty input line of a :class:`~seq2seq.infer.translator.Translator`
    run, ``directory/LINE.png`` (LINE from 1, zero-padded); returns how many were written."""
    from seq2seq.infer.translator import truncate_sources

    if directory.exists() and not directory.is_dir():
        raise Seq2SeqError(f"--plot-attention {directory} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    tok = translator.tokenizers
    src_ids = truncate_sources(translator.read_sources(lines)[1], translator.max_src_tokens)
    tgt_ids = [tok.tgt.encode(text)[: translator.max_output_tokens] for text in outputs]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    width = len(str(len(lines)))
    for start in range(0, len(todo), 32):
        chunk = todo[start : start + 32]
        maps = attention_weights(translator.model, [src_ids[i] for i in chunk], [tgt_ids[i] for i in chunk])
        for i, weights in zip(chunk, maps):
            plot_attention(
                weights,
                [tok.src.id_to_piece(t) for t in src_ids[i]],
                [tok.tgt.id_to_piece(t) for t in tgt_ids[i]],
                directory / f"{i + 1:0{width}d}.png",
                title=f"line {i + 1}",
            )
    return len(todo)
