"""From sentence pairs to padded tensor batches.

:func:`encode_pairs` tokenizes and filters a :class:`ParallelText` into :class:`Example` s;
the samplers of :mod:`seq2seq.data.samplers` group examples of similar length into batches that
fit a padded-token budget; :func:`collate` pads a list of examples into a :class:`Batch`.

Target sequences are stored without BOS/EOS; :func:`collate` builds the teacher-forcing pair
``tgt_in = BOS + tgt`` and ``tgt_out = tgt + EOS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from seq2seq.data.loading import ParallelText
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, SpmTokenizer, TokenizerPair
from seq2seq.errors import DataError


@dataclass
class Example:
    """One sentence pair as token ids (no BOS/EOS); ``index`` is its line in the ParallelText."""

    index: int
    src: list[int]
    tgt: list[int]


@dataclass
class FilterStats:
    """What :func:`encode_pairs` kept and why it dropped the rest."""

    kept: int
    empty: int  # a side is empty or whitespace-only
    too_long: int  # src > max_src_tokens or tgt + EOS > max_tgt_tokens
    total: int
    too_short: int = 0  # a side has fewer than min_tokens tokens (but is not empty)
    truncated: int = 0  # drop=False: pairs cut to the maximum lengths

    @property
    def dropped(self) -> int:
        return self.empty + self.too_long + self.too_short

    def summary(self) -> str:
        """A one-line report, e.g. ``kept 28,990 of 29,000 pairs (dropped 3 empty, 7 too long)``."""
        text = f"kept {self.kept:,} of {self.total:,} pairs"
        reasons = [
            f"{n:,} {what}"
            for n, what in (
                (self.empty, "empty"),
                (self.too_short, "too short"),
                (self.too_long, "too long"),
            )
            if n
        ]
        if reasons:
            text += f" (dropped {', '.join(reasons)})"
        if self.truncated:
            text += f" ({self.truncated:,} truncated to the maximum length)"
        return text


def encode_pairs(
    text: ParallelText,
    tokenizers: TokenizerPair,
    max_src_tokens: int,
    max_tgt_tokens: int,
    min_tokens: int = 1,
    drop: bool = True,
) -> tuple[list[Example], FilterStats]:
    """Tokenize every pair and filter (``drop=True``) or truncate (``drop=False``).

    With ``drop=True`` a pair is dropped when either side is empty/whitespace-only, has fewer than
    ``min_tokens`` tokens, or is too long: ``len(src) > max_src_tokens`` or
    ``len(tgt) + 1 > max_tgt_tokens`` (the target counts its EOS). With ``drop=False`` (validation
    and test sets) every pair is kept, in order, cut to ``max_src_tokens`` / ``max_tgt_tokens - 1``
    ids. A maximum ``<= 0`` means no limit; ``max_tgt_tokens=1`` acts as 2 (one token and its EOS).
    ``Example.index`` is the pair's position in ``text``.
    """
    total = len(text.src)
    src_ids = tokenizers.src.encode_batch(text.src)
    tgt_ids = tokenizers.tgt.encode_batch(text.tgt)
    max_src = max_src_tokens if max_src_tokens > 0 else None
    max_tgt = max_tgt_tokens - 1 if max_tgt_tokens > 0 else None  # room for EOS
    if max_tgt is not None and max_tgt < 1:
        max_tgt = 1  # max_tgt_tokens=1 would leave no room for any token
    examples: list[Example] = []
    if not drop:
        truncated = 0
        for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
            if (max_src is not None and len(s) > max_src) or (max_tgt is not None and len(t) > max_tgt):
                truncated += 1
                s, t = s[:max_src], t[:max_tgt]
            examples.append(Example(i, s, t))
        return examples, FilterStats(total, 0, 0, total, truncated=truncated)

    empty = too_short = too_long = 0
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        if not s or not t or text.src[i].isspace() or text.tgt[i].isspace():
            empty += 1
        elif len(s) < min_tokens or len(t) < min_tokens:
            too_short += 1
        elif (max_src is not None and len(s) > max_src) or (max_tgt is not None and len(t) > max_tgt):
            too_long += 1
        else:
            examples.append(Example(i, s, t))
    return examples, FilterStats(len(examples), empty, too_long, total, too_short=too_short)


def encode_labelled(
    text: ParallelText,
    tokenizer: SpmTokenizer,
    label_ids: dict[str, int],
    max_src_tokens: int,
    drop: bool = True,
) -> tuple[list[Example], FilterStats]:
    """Tokenize labelled sentences (``text.tgt`` holds the labels) into examples whose ``tgt`` is
    ``[label id]``. Empty sentences are dropped (``drop=True``) or kept empty; longer ones are
    dropped or truncated. A label missing from ``label_ids`` is a DataError naming it."""
    ids = tokenizer.encode_batch(text.src)
    examples: list[Example] = []
    empty = too_long = truncated = 0
    for i, (s, label) in enumerate(zip(ids, text.tgt)):
        if label not in label_ids:
            known = ", ".join(sorted(label_ids))
            raise DataError(
                f"{text.name}: example {i + 1} has the label '{label}', unknown to the training data (labels: {known})"
            )
        if not s and drop:
            empty += 1
            continue
        if max_src_tokens > 0 and len(s) > max_src_tokens:
            if drop:
                too_long += 1
                continue
            s, truncated = s[:max_src_tokens], truncated + 1
        examples.append(Example(i, s, [label_ids[label]]))
    return examples, FilterStats(len(examples), empty, too_long, len(ids), truncated=truncated)


@dataclass
class Batch:
    """A padded batch; PAD_ID fills the end of shorter rows."""

    src: Tensor  # (B, S) long
    src_mask: Tensor  # (B, S) bool, True at real tokens
    tgt_in: Tensor  # (B, T) long: BOS + tgt
    tgt_out: Tensor  # (B, T) long: tgt + EOS
    tgt_mask: Tensor  # (B, T) bool, True at real target positions (len(tgt) + 1 per row)
    indices: list[int]  # Example.index of each row
    n_tgt_tokens: int  # real target tokens, EOS included (= tgt_mask.sum())
    context: Optional[Tensor] = None  # (B, K) float: context target vectors, when given

    def __len__(self) -> int:
        return self.src.size(0)

    @property
    def n_src_tokens(self) -> int:
        """Real source tokens in the batch."""
        return int(self.src_mask.sum())

    def to(self, device: Union[str, torch.device], non_blocking: bool = True) -> Batch:
        """A copy on ``device`` (asynchronous copies when the tensors are pinned)."""

        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        return Batch(
            src=move(self.src),
            src_mask=move(self.src_mask),
            tgt_in=move(self.tgt_in),
            tgt_out=move(self.tgt_out),
            tgt_mask=move(self.tgt_mask),
            indices=list(self.indices),
            n_tgt_tokens=self.n_tgt_tokens,
            context=None if self.context is None else move(self.context),
        )


def _pad(rows: Sequence[Sequence[int]], width: int, offset: int = 0) -> np.ndarray:
    """(len(rows), width) int64 array: row i holds rows[i] starting at column ``offset``."""
    out = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, ids in enumerate(rows):
        if ids:
            out[i, offset : offset + len(ids)] = ids
    return out


def collate_source(
    sources: Sequence[Sequence[int]], multiple: int = 1, limit: Optional[int] = None
) -> tuple[Tensor, Tensor]:
    """Pad source id lists: ``(src (B,S) long, src_mask (B,S) bool)``.

    S is at least 1, so a batch of empty sources still has a (fully masked) column. ``multiple``:
    S is rounded up to a multiple of it, though not past ``limit`` (nor below the longest source).
    """
    if not sources:
        raise ValueError("cannot collate an empty list of sources")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    lengths = np.fromiter((len(s) for s in sources), dtype=np.int64, count=len(sources))  # (B,)
    longest = max(1, int(lengths.max()))
    width = -(-longest // multiple) * multiple
    if limit is not None:
        width = max(longest, min(width, limit))
    src = torch.from_numpy(_pad(sources, width))  # (B, S)
    src_mask = torch.from_numpy(np.arange(width)[None, :] < lengths[:, None])  # (B, S)
    return src, src_mask


def collate(examples: Sequence[Example], context_targets: Optional[np.ndarray] = None) -> Batch:
    """Pad examples into a :class:`Batch` (rows in the given order).

    ``context_targets`` (N, K): vectors indexed by ``Example.index``; the batch gets their rows.
    """
    if not examples:
        raise ValueError("cannot collate an empty list of examples")
    src, src_mask = collate_source([e.src for e in examples])
    tgts = [e.tgt for e in examples]
    tgt_len = np.fromiter((len(t) + 1 for t in tgts), dtype=np.int64, count=len(tgts))  # (B,)
    width = int(tgt_len.max())
    rows = np.arange(len(tgts))
    tgt_in = _pad(tgts, width, offset=1)  # (B, T)
    tgt_in[:, 0] = BOS_ID
    tgt_out = _pad(tgts, width)  # (B, T)
    tgt_out[rows, tgt_len - 1] = EOS_ID
    tgt_mask = np.arange(width)[None, :] < tgt_len[:, None]  # (B, T)
    return Batch(
        src=src,
        src_mask=src_mask,
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        tgt_mask=torch.from_numpy(tgt_mask),
        indices=[e.index for e in examples],
        n_tgt_tokens=int(tgt_len.sum()),
        context=None if context_targets is None else torch.from_numpy(context_targets[[e.index for e in examples]]),
    )
