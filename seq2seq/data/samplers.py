"""Batch samplers: which examples go together in a batch, and in what order an epoch serves them.

:class:`TokenBudgetBatchSampler` sorts examples by length, cuts the order into batches that fit a
padded-token budget (and a row cap), and shuffles the batches per epoch from the seed alone, so
that every DDP rank and every resumed run sees the same batches. :class:`WeightedBatchSampler`
draws each epoch's examples from several corpora by weight first (``data.train`` as a list).
:class:`EpochBatches` holds one epoch's batches as arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Optional

import numpy as np


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
        # As np.lexsort((tie, src, tgt)) with tie = rng.permutation(n), but faster: visit the
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
