"""Source-side normalisation applied before the tokenizer, in training and at translation time.

``data.normalize`` names it in the config, so a checkpoint carries it and ``translate`` applies
the same rule as training did:

- ``none`` (default): the text as it is.
- ``numerals``: one canonical form for a number written in digits (:func:`normalize_numeral`):
  ``1,000`` -> ``1000``, ``007`` -> ``7``, ``+5`` -> ``5``, ``−5`` (U+2212) -> ``-5``, ``3.140``
  -> ``3.14``, ``.5`` -> ``0.5``, ``-0`` -> ``0``. Text that is not a numeral is only stripped.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

NORMALIZERS = ("none", "numerals")

# Digits grouped by threes with one separator used throughout (1,000,000; 1 000 000; 1_000), or
# plain digits; then an optional fraction. The separators: comma, underscore, space, no-break
# space, narrow no-break space, thin space, apostrophe (Swiss 1'000).
_GROUP_SEPARATORS = ",_ \u00a0\u202f\u2009'"
_NUMERAL = re.compile(
    r"(?P<sign>[+\-\u2212]?)"
    r"(?P<int>[0-9]{1,3}(?P<sep>[" + re.escape(_GROUP_SEPARATORS) + r"])[0-9]{3}(?:(?P=sep)[0-9]{3})*|[0-9]*)"
    r"(?:\.(?P<frac>[0-9]*))?"
)  # [0-9], not \d: other scripts' digits are not numerals the model has seen
_CANONICAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")


def normalize_numeral(text: str) -> str:
    """The canonical form of a numeral, or ``text`` stripped when it is not one.

    Canonical: an optional ``-``, the integer digits without separators or leading zeros, and
    the decimal digits without trailing zeros (no point when none are left). ``-0`` is ``0``.
    Only ASCII digits count (``٣`` is not a numeral here). Groups must be of three digits with
    one separator throughout: ``1,00,000`` and ``3,14`` are left as they are (the comma is then
    an unknown character, which ``translate`` reports).

    >>> [normalize_numeral(t) for t in ["1,000", "007", "-5", "3.14", "3.140", " 12 ", "abc"]]
    ['1000', '7', '-5', '3.14', '3.14', '12', 'abc']
    """
    stripped = text.strip()
    match = _NUMERAL.fullmatch(stripped)
    if match is None:
        return stripped
    integer, fraction = match.group("int"), match.group("frac")
    if not integer and not fraction:  # "", "-", ".", "+."
        return stripped
    if match.group("sep"):
        integer = integer.replace(match.group("sep"), "")
    integer = integer.lstrip("0") or "0"
    fraction = (fraction or "").rstrip("0")
    sign = "-" if match.group("sign") in ("-", "\u2212") and (integer != "0" or fraction) else ""
    return sign + integer + ("." + fraction if fraction else "")


def is_canonical_numeral(text: str) -> bool:
    """True for the output of :func:`normalize_numeral` on a numeral (``-12.5``, ``0``, ``7``)."""
    return _CANONICAL.fullmatch(text) is not None


def numeral_digits(text: str) -> Optional[tuple[int, int]]:
    """(integer digits, decimal digits) of a canonical numeral; None when ``text`` is not one."""
    if not is_canonical_numeral(text):
        return None
    integer, _, fraction = text.lstrip("-").partition(".")
    return len(integer), len(fraction)


def _identity(text: str) -> str:
    return text


def source_normalizer(name: str) -> Callable[[str], str]:
    """The function ``data.normalize = name`` applies to every source text.

    Raises:
        ValueError: an unknown name.
    """
    if name == "none":
        return _identity
    if name == "numerals":
        return normalize_numeral
    raise ValueError(f"unknown normalizer '{name}' (use one of {', '.join(NORMALIZERS)})")
