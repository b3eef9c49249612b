"""What a model's training sources looked like, and which inputs fall outside that.

A model answers every input, also one it cannot read: ``abc`` into a digits model gives a
number, Chinese into a German model gives a sentence. :func:`source_limits` records, at training
time, what the sources were like (stored in the checkpoint); :func:`find_out_of_domain` lists the
inputs a translator should not trust: characters the source vocabulary maps to ``<unk>``,
sources longer than any seen in training, and, for ``data.normalize: numerals``, text that is
not a numeral or has more integer or decimal digits than any training numeral.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from seq2seq.data.normalize import numeral_digits
from seq2seq.data.tokenizer import UNK_ID


def source_limits(src_ids: Sequence[Sequence[int]], sources: Sequence[str], normalize: str) -> dict[str, int]:
    """The longest training source in tokens and, for numerals, in integer and decimal digits.

    ``src_ids``: the token ids of the training sources kept after filtering; ``sources``: their
    (normalized) texts.
    """
    limits = {"max_tokens": max((len(ids) for ids in src_ids), default=0)}
    if normalize == "numerals":
        shapes = [shape for shape in map(numeral_digits, sources) if shape is not None]
        if shapes:
            limits["max_integer_digits"] = max(integer for integer, _ in shapes)
            limits["max_decimal_digits"] = max(decimals for _, decimals in shapes)
    return limits


def _line_list(indices: list[int], shown: int = 10) -> str:
    """``"line 3"`` / ``"lines 1, 4, 9"`` / ``"lines 1, 2, ... (and 5 more)"``, 1-based."""
    numbers = ", ".join(str(i + 1) for i in indices[:shown])
    more = f" (and {len(indices) - shown} more)" if len(indices) > shown else ""
    return f"line{'s' if len(indices) > 1 else ''} {numbers}{more}"


@dataclass
class OutOfDomain:
    """Input lines (0-based) that the model was not trained to read, by reason."""

    total: int
    unknown_characters: list[int] = field(default_factory=list)
    too_long: list[int] = field(default_factory=list)
    not_numerals: list[int] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def lines(self) -> list[int]:
        """Every flagged line, once, in input order."""
        return sorted({*self.unknown_characters, *self.too_long, *self.not_numerals})

    def __bool__(self) -> bool:
        return bool(self.unknown_characters or self.too_long or self.not_numerals)

    def summary(self) -> str:
        """One message: how many lines, and which, for each reason."""
        parts = []
        if self.unknown_characters:
            parts.append(
                f"{len(self.unknown_characters)} with characters the source vocabulary does not have "
                f"(read as <unk>): {_line_list(self.unknown_characters)}"
            )
        if self.not_numerals:
            parts.append(f"{len(self.not_numerals)} not a number in digits: {_line_list(self.not_numerals)}")
        if self.too_long:
            if "max_integer_digits" in self.limits:
                longest = (
                    f"{self.limits['max_integer_digits']} integer digits and "
                    f"{self.limits['max_decimal_digits']} decimals"
                )
            else:
                longest = f"{self.limits['max_tokens']} tokens"
            parts.append(
                f"{len(self.too_long)} longer than anything trained (at most {longest}): {_line_list(self.too_long)}"
            )
        count = len(self.lines)
        return (
            f"{count} of {self.total} input line(s) are outside what the model was trained on, so their "
            f"output is unreliable: {'; '.join(parts)}"
        )


def find_out_of_domain(
    sources: Sequence[str],
    src_ids: Sequence[Sequence[int]],
    limits: Optional[dict[str, Any]],
    normalize: str,
) -> OutOfDomain:
    """The lines of ``sources`` (normalized, as the model reads them; ``src_ids`` their token ids,
    before any truncation) outside the training domain that ``limits`` describes (a checkpoint's
    ``source_limits``; None or empty: only unknown characters are checked). Empty lines are fine.
    """
    limits = limits or {}
    report = OutOfDomain(total=len(sources), limits=limits)
    max_tokens = limits.get("max_tokens")
    max_integer, max_decimals = limits.get("max_integer_digits"), limits.get("max_decimal_digits")
    for i, (text, ids) in enumerate(zip(sources, src_ids)):
        if not ids:
            continue
        if UNK_ID in ids:
            report.unknown_characters.append(i)
        if normalize == "numerals":
            shape = numeral_digits(text)
            if shape is None:
                if UNK_ID not in ids:
                    report.not_numerals.append(i)
                continue
            if max_integer is not None and (shape[0] > max_integer or shape[1] > (max_decimals or 0)):
                report.too_long.append(i)
        elif max_tokens and len(ids) > max_tokens:
            report.too_long.append(i)
    return report
