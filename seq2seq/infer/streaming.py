"""Translating input of any length in bounded memory: lines read in windows
(:func:`line_windows`, :func:`default_window`), each window sorted and decoded on its own, and
an out-of-domain report added up window by window (:class:`StreamOutOfDomain`). The
:class:`~seq2seq.infer.translator.Translator` methods that do it come from
:class:`StreamingMixin`."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union, overload

import torch
from tqdm.auto import tqdm

from seq2seq.config import SearchConfig
from seq2seq.data.domain import OutOfDomain, find_out_of_domain
from seq2seq.errors import DataError
from seq2seq.infer.sources import _capped_message, _cut_sources, _truncated_message


def default_window(batch_tokens: int) -> int:
    """Lines a streaming translation reads, sorts by length and decodes together, by default:
    twice the batch token budget (12,000 lines at the default 6,000 tokens, 120,000 at a GPU's
    60,000). Lines are sorted by length only within a window. Counted on Multi30k's 29,000
    training sources, greedy, 12,000-line windows make 2% more batches than sorting the whole
    input, with 2.6% padding against 0.9%; 2,000-line windows make 16% more batches, with 11%
    padding. Memory still holds one window. The table: docs/translate.md, "Choosing a size"."""
    return max(1, 2 * batch_tokens)


DEFAULT_WINDOW = default_window(SearchConfig().batch_tokens)  # 12,000 lines


def line_windows(lines: Iterable[str], size: int = DEFAULT_WINDOW) -> Iterator[list[str]]:
    """``lines`` in consecutive lists of ``size`` (the last one shorter), read lazily."""
    if size < 1:
        raise ValueError(f"window size must be at least 1, got {size}")
    iterator = iter(lines)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


SHOWN_LINES = 100  # line numbers a streamed out-of-domain report keeps per reason (a summary names 10)


class FirstLines(Sequence[int]):
    """The line numbers of one out-of-domain reason in a stream: how many (``len``) and the
    first :data:`SHOWN_LINES` of them (indexing and iteration), so that a report over any
    number of lines stays small."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[int] = []

    def extend(self, lines: Sequence[int]) -> None:
        """Add ``lines`` (in input order, after those already added)."""
        self.count += len(lines)
        room = SHOWN_LINES - len(self.first)
        if room > 0:
            self.first.extend(lines[:room])

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> list[int]: ...
    def __getitem__(self, index: Union[int, slice]) -> Union[int, list[int]]:
        return self.first[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self.first)

    def __repr__(self) -> str:
        return f"FirstLines(count={self.count}, first={self.first[:10]})"


@dataclass
class StreamOutOfDomain(OutOfDomain):
    """An :class:`~seq2seq.data.domain.OutOfDomain` report added up window by window over a
    stream of lines, with line numbers (0-based) counted from the stream's first line plus
    ``first_line``. The reasons are :class:`FirstLines`: true counts, the first line numbers
    only; its :meth:`summary` reads as the report of the whole input would."""

    unknown_characters: FirstLines = field(default_factory=FirstLines)  # type: ignore[assignment]
    too_long: FirstLines = field(default_factory=FirstLines)  # type: ignore[assignment]
    not_numerals: FirstLines = field(default_factory=FirstLines)  # type: ignore[assignment]
    flagged: FirstLines = field(default_factory=FirstLines)

    def add(self, report: OutOfDomain, offset: int) -> None:
        """Add the report of one window whose first line is line ``offset``."""
        self.total += report.total
        for name in ("unknown_characters", "too_long", "not_numerals", "lines"):
            numbers = [offset + i for i in getattr(report, name)]
            getattr(self, "flagged" if name == "lines" else name).extend(numbers)

    @property
    def lines(self) -> FirstLines:  # type: ignore[override]
        """Every flagged line, once: the count and the first line numbers."""
        return self.flagged


class StreamingMixin:
    """The streaming methods of :class:`~seq2seq.infer.translator.Translator`, which it inherits:
    they use its settings (``model``, ``search``, ``source_limits``, ``check_inputs``,
    ``normalize_name``, ``max_src_tokens``, ``max_output_tokens``) and its ``_spec``,
    ``read_sources``, ``prefix_ids`` and ``_decode``, as
    :meth:`~seq2seq.infer.translator.Translator.translate_hypotheses` does for input read all at once."""

    def translate_windows(
        self,
        windows: Iterable[list[str]],
        beam: Optional[int] = None,
        nbest: int = 1,
        batch_tokens: Optional[int] = None,
        batch_rows: Optional[int] = None,
        strict: bool = False,
        progress: bool = False,
        total: Optional[int] = None,
        first_line: int = 0,
        prefixes: Optional[Sequence[Optional[str]]] = None,
    ) -> Iterator[list[list[tuple[str, float]]]]:
        """Translate a stream that comes in windows (lists of lines, e.g. from :func:`line_windows`):
        for each window, as soon as it is decoded, up to ``nbest`` (text, score) pairs per line,
        in the window's order. Windows are read one at a time, sorted by length inside into
        batches as :meth:`translate_hypotheses` does, so memory depends on the window, not on
        the length of the stream, and each window's output is there before the next is read.

        The warnings come once, when the stream ends: one out-of-domain summary with line
        numbers counted from the first line of the stream (plus ``first_line``: where the stream
        starts in a larger input), one count of truncated sources, one of capped outputs. With
        ``strict``, a window with lines outside the training domain raises a DataError before
        anything of it is decoded; the windows before it have been yielded already.

        ``progress``: a bar counting lines (``total``: how many to expect, if known).

        ``prefixes``: as for :meth:`translate_hypotheses`, one per line of the whole input, indexed
        by line number (the stream's first line is ``prefixes[first_line]``); a DataError when the
        stream goes on past them.
        """
        spec = self._spec(beam, nbest)
        self.model.eval()
        report = StreamOutOfDomain(total=0, limits=dict(self.source_limits or {}))
        truncated = capped = 0
        start = first_line
        bar = tqdm(total=total, desc="translate", unit="line", disable=None if progress else True)
        try:
            for window in windows:
                with torch.inference_mode():
                    sources, ids = self.read_sources(window)
                    if self.check_inputs or strict:
                        found = find_out_of_domain(sources, ids, self.source_limits, self.normalize_name)
                        if found and strict:
                            partial = StreamOutOfDomain(total=start - first_line, limits=report.limits)
                            partial.add(found, start)
                            where = (
                                "Nothing was translated"
                                if start == first_line
                                else (f"Nothing from line {start + 1} on was translated")
                            )
                            raise DataError(
                                f"{partial.summary()}. {where} (strict): fix or remove these lines, "
                                "or translate without --strict to get output for them anyway"
                            )
                        report.add(found, start)
                    truncated += _cut_sources(ids, self.max_src_tokens)
                    del sources
                    forced = None
                    if prefixes is not None:
                        if len(prefixes) < start + len(window):
                            raise DataError(
                                f"{len(prefixes):,} prefixes, but the input goes on past line "
                                f"{len(prefixes):,}: give one prefix per input line"
                            )
                        forced = self.prefix_ids(prefixes[start : start + len(window)], len(window))
                    results, window_capped = self._decode(
                        ids, spec, batch_tokens, batch_rows, progress=False, prefix_ids=forced
                    )
                capped += window_capped
                start += len(window)
                bar.update(len(window))
                yield results
        finally:
            bar.close()
        if report:
            warnings.warn(report.summary(), stacklevel=2)
        if truncated:
            warnings.warn(_truncated_message(truncated, self.max_src_tokens), stacklevel=2)
        if capped:
            warnings.warn(_capped_message(capped, self.max_output_tokens), stacklevel=2)

    def check_windows(self, windows: Iterable[list[str]], first_line: int = 0) -> StreamOutOfDomain:
        """The lines of a stream (in windows, as :meth:`translate_windows` reads it) outside the
        training domain, without translating anything: what ``strict`` would refuse, found in one
        cheap pass (normalisation and tokenization only) before hours of decoding. Line numbers
        count from ``first_line``."""
        report = StreamOutOfDomain(total=0, limits=dict(self.source_limits or {}))
        start = first_line
        for window in windows:
            sources, ids = self.read_sources(window)
            report.add(find_out_of_domain(sources, ids, self.source_limits, self.normalize_name), start)
            start += len(window)
        return report

    def translate_stream(
        self,
        lines: Iterable[str],
        window: Optional[int] = None,
        beam: Optional[int] = None,
        batch_tokens: Optional[int] = None,
        batch_rows: Optional[int] = None,
        strict: bool = False,
        progress: bool = False,
    ) -> Iterator[str]:
        """One detokenized translation per line of ``lines`` (any iterable: a file, a generator),
        in order, ``window`` lines at a time (default: :func:`default_window`, twice the batch
        token budget; see :meth:`translate_windows`): memory stays flat however many lines come,
        and the outputs of a window are yielded as soon as it is decoded.

        >>> with open("big.de") as f, open("big.en", "w") as out:
        ...     for text in translator.translate_stream(line.rstrip("\\n") for line in f):
        ...         print(text, file=out)
        """
        for hyps in self.translate_windows(
            line_windows(lines, window or default_window(batch_tokens or self.search.batch_tokens)),
            beam=beam,
            batch_tokens=batch_tokens,
            batch_rows=batch_rows,
            strict=strict,
            progress=progress,
        ):
            yield from (h[0][0] for h in hyps)
