"""From sentence pairs to padded tensor batches.

:func:`encode_pairs` tokenizes and filters a :class:`ParallelText` into :class:`Example` s;
:class:`TokenBudgetBatchSampler` groups examples of similar length into batches that fit a
padded-token budget; :func:`collate` pads a list of examples into a :class:`Batch`.

Target sequences are stored without BOS/EOS; :func:`collate` builds the teacher-forcing pair
``tgt_in = BOS + tgt`` and ``tgt_out = tgt + EOS``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

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


class EpochBatches(Sequence[list[int]]):
    """The batches of one epoch, in the order they are served, as arrays (no Python list per
    batch or position): batch ``k`` is ``order[bounds[b]:bounds[b + 1]]`` with ``b = perm[k]``."""

    def __init__(self, order: np.ndarray, bounds: np.ndarray, perm: Optional[np.ndarray] = None) -> None:
        self.order = order  # (N,) positions in packing order
        self.bounds = bounds  # (batches + 1,) where each batch starts in ``order``
        self.perm = perm  # (batches,) serving order of the packed batches; None: packing order

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def _one(self, k: int) -> list[int]:
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(f"batch {k} of {len(self)}")
        b = int(self.perm[k]) if self.perm is not None else k
        return self.order[self.bounds[b] : self.bounds[b + 1]].tolist()

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self._one(i) for i in range(*k.indices(len(self)))]
        return self._one(int(k))

    def __iter__(self) -> Iterator[list[int]]:
        return (self._one(k) for k in range(len(self)))


class TokenBudgetBatchSampler:
    """Length-bucketed batches whose padded size fits a token budget.

    Examples are sorted by (target length, source length) — ties broken randomly when
    ``shuffle`` — and packed greedily so that ``n_sentences * max(longest_src, longest_tgt + 1)``
    stays within ``max_tokens`` (and ``n_sentences <= max_sentences`` when that is > 0). An example
    over the budget on its own becomes a batch of one. With ``shuffle`` the batch order is
    shuffled, reproducibly from ``seed`` and the epoch; without it batches come in length order,
    which decoding uses (sort by length, then restore the order via the positions).

    Iterating yields lists of positions into the length sequences; every position appears exactly
    once per epoch. Ties have equal widths, so where the batches are cut is the same in every
    epoch: it is found once, over runs of equal widths (a few thousand steps for any corpus size).
    Memory: a few arrays of N int32/int64 (no Python object per example).
    """

    def __init__(
        self,
        src_lengths: Sequence[int] | np.ndarray,
        tgt_lengths: Sequence[int] | np.ndarray,
        max_tokens: int,
        max_sentences: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        """Lengths exclude BOS/EOS (the target's +1 is added here). Only a sort key (2 bytes per
        example where lengths allow), the batch bounds and the current epoch's order are kept."""
        src = np.asarray(src_lengths).reshape(-1).astype(np.int32, copy=False)  # (N,)
        tgt = np.asarray(tgt_lengths).reshape(-1).astype(np.int32, copy=False)  # (N,)
        if src.shape != tgt.shape:
            raise ValueError(f"{len(src)} source lengths but {len(tgt)} target lengths")
        self.n = len(src)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.max_tokens = int(max_tokens)
        self.max_sentences = int(max_sentences) if max_sentences and max_sentences > 0 else 0
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        self._cache: tuple[int, EpochBatches] | None = None
        # (tgt_len, src_len) as one integer, the sort key: 16 bits where it fits (a radix sort).
        self._radix = int(src.max(initial=0)) + 1  # key = tgt * radix + src
        key = tgt.astype(np.int64) * self._radix + src  # (N,)
        top = int(key.max(initial=0))
        self._key = key.astype(np.uint16 if top < 2**16 else np.int32 if top < 2**31 else np.int64)  # (N,)
        del key
        # Padded width of each example: its longer side, the target counting BOS/EOS once.
        order = self._order(None)
        self._bounds = self._pack(np.maximum(src, tgt + 1)[order])  # (batches + 1,)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches ``__iter__`` yields."""
        self.epoch = int(epoch)

    def _order(self, rng: np.random.Generator | None) -> np.ndarray:
        """Positions sorted by (tgt_len, src_len), ties random (rng) or by position."""
        n = self.n
        index = np.int32 if n < 2**31 else np.int64
        if rng is None:
            return np.argsort(self._key, kind="stable").astype(index)
        # As np.lexsort((tie, src, tgt)) with tie = rng.permutation(n), 5x faster: visit the
        # positions in the order of their tie rank, then sort them stably by (tgt, src).
        tie = rng.permutation(n)
        by_tie = np.empty(n, dtype=index)
        by_tie[tie] = np.arange(n, dtype=index)
        return by_tie[np.argsort(self._key[by_tie], kind="stable")]

    def _pack(self, widths: np.ndarray) -> np.ndarray:
        """Where greedy packing cuts ``widths`` (in serving order) into batches within the
        budget: the bounds ``[0, ..., N]`` (a batch grows while ``(n + 1) * longest`` fits)."""
        n_all = len(widths)
        if not n_all:
            return np.zeros(1, dtype=np.int64)
        change = np.flatnonzero(np.diff(widths)) + 1
        starts = np.concatenate(([0], change)).tolist()
        values = widths[starts].tolist()
        counts = np.diff(np.concatenate((starts, [n_all]))).tolist()
        budget, cap = self.max_tokens, self.max_sentences
        cuts = [0]
        n = longest = 0  # sentences in the open batch and its widest
        position = 0
        for w, c in zip(values, counts):
            while c:
                if not n:  # a batch always takes its first sentence
                    n, longest, c, position = 1, w, c - 1, position + 1
                    continue
                widest = w if w > longest else longest
                room = budget // widest - n
                if cap and cap - n < room:
                    room = cap - n
                if room <= 0:
                    cuts.append(position)
                    n = 0
                    continue
                k = room if room < c else c
                n, longest, c, position = n + k, widest, c - k, position + k
        cuts.append(n_all)
        return np.asarray(cuts, dtype=np.int64)

    def ordered(self, epoch: int) -> EpochBatches:
        """The batches of ``epoch`` in the order they are served (deterministic per seed and
        epoch), as arrays; training resumes inside an epoch by skipping the first k."""
        epoch = int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = self._order(rng)
            perm = rng.permutation(len(self._bounds) - 1)
            result = EpochBatches(order, self._bounds, perm)
        else:
            result = EpochBatches(self._order(None), self._bounds)
        self._cache = (epoch, result)
        return result

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` as lists of positions, in the order they are served
        (:meth:`ordered` without building the lists)."""
        return list(self.ordered(epoch))

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.ordered(self.epoch))

    def __len__(self) -> int:
        """Number of batches (the same every epoch: ties have equal widths)."""
        return len(self._bounds) - 1


class WeightedBatchSampler(TokenBudgetBatchSampler):
    """:class:`TokenBudgetBatchSampler` over several corpora, each sampled by its weight.

    The positions are grouped by corpus: corpus ``k`` is the ``sizes[k]`` positions after those
    of corpora ``0 .. k-1``. An epoch trains on each position of corpus ``k`` ``weights[k]``
    times on average (a per-example up-sampling factor, as fairseq's ``--upsample-primary``):
    ``floor(w)`` times each, and a ``w - floor(w)`` share of its positions once more, drawn
    without replacement afresh each epoch (that count rounded up or down at random, so that its
    mean is exact). Weight 0 leaves a corpus out. The epoch's positions (repeats included) are
    then batched as the base class does: sorted by length with random ties, packed into the
    budget, the batches shuffled. Everything depends only on ``seed`` and the epoch, so every
    rank and a resumed run see the same batches; with weights all 1 they are the base class's.
    The number of batches may differ between epochs when a weight has a fraction.
    """

    def __init__(
        self,
        src_lengths: Sequence[int] | np.ndarray,
        tgt_lengths: Sequence[int] | np.ndarray,
        sizes: Sequence[int],
        weights: Sequence[float],
        max_tokens: int,
        max_sentences: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(src_lengths, tgt_lengths, max_tokens, max_sentences, shuffle=True, seed=seed)
        self.sizes = [int(n) for n in sizes]
        self.weights = [float(w) for w in weights]
        if len(self.sizes) != len(self.weights) or sum(self.sizes) != self.n or min(self.sizes, default=0) < 0:
            raise ValueError(f"corpus sizes {self.sizes} and weights {self.weights} do not fit {self.n} positions")
        if not all(0.0 <= w < float("inf") for w in self.weights):
            raise ValueError(f"weights must be finite and >= 0, got {self.weights}")
        self.starts = np.concatenate(([0], np.cumsum(self.sizes, dtype=np.int64)))[:-1].tolist()

    def expected(self) -> list[float]:
        """The mean number of samples each corpus gives an epoch (``weight * size``)."""
        return [w * n for w, n in zip(self.weights, self.sizes)]

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        """The positions of one epoch, each as many times as it is trained on."""
        index = np.int32 if self.n < 2**31 else np.int64
        parts = [np.zeros(0, dtype=index)]
        for start, n, w in zip(self.starts, self.sizes, self.weights):
            whole, part = int(w), w - int(w)
            if not n or not w:
                continue
            everyone = np.arange(start, start + n, dtype=index)
            parts += [everyone] * whole
            if part:
                count = int(part * n)
                count += int(rng.random() < part * n - count)
                parts.append(start + rng.choice(n, size=count, replace=False).astype(index))
        return np.concatenate(parts)

    def ordered(self, epoch: int) -> EpochBatches:
        epoch = int(epoch)
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        positions = self._draw(rng)  # (M,)
        m = len(positions)
        # As the base class's _order: visit in the order of a random tie rank, sort stably by key.
        tie = rng.permutation(m)
        by_tie = np.empty(m, dtype=positions.dtype)
        by_tie[tie] = np.arange(m, dtype=positions.dtype)
        order = positions[by_tie[np.argsort(self._key[positions[by_tie]], kind="stable")]]  # (M,)
        key = self._key[order].astype(np.int64)
        bounds = self._pack(np.maximum(key % self._radix, key // self._radix + 1))
        result = EpochBatches(order, bounds, rng.permutation(len(bounds) - 1))
        self._cache = (epoch, result)
        return result

    def __len__(self) -> int:
        """Number of batches of the current epoch (:meth:`set_epoch`)."""
        return len(self.ordered(self.epoch))


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


def collate_source(sources: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Pad source id lists: ``(src (B,S) long, src_mask (B,S) bool)``.

    S is at least 1, so a batch of empty sources still has a (fully masked) column.
    """
    if not sources:
        raise ValueError("cannot collate an empty list of sources")
    lengths = np.fromiter((len(s) for s in sources), dtype=np.int64, count=len(sources))  # (B,)
    width = max(1, int(lengths.max()))
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
