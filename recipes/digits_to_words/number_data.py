"""Generated data for digits -> words: numerals as people write them and their num2words spelling.

The training distribution is a deliberate mixture (:func:`sample_numeral`), because numbers
drawn uniformly per length are almost never round and almost never hold a run of zeros, and
those are the numbers people type most:

- **length**: 1 to :data:`MAX_DIGITS` (13) integer digits, each length equally likely, so
  ``1 000 000 000 000`` (one trillion; 일조 in Korean) is covered and short numbers are not
  drowned by long ones. Every integer from -999 to 999 is in training as well.
- **shape** of the integer part: uniform digits (35%), round numbers ``m x 10^k`` with 1 to 3
  significant digits (25%), runs of zeros placed anywhere inside, often whole groups of three or
  four (25%), and repeated digits (15%).
- **sign**: 15% negative (``-5`` -> ``minus five``, ``마이너스 오``).
- **decimals**: 20% get 1 to 4 decimal digits (``3.14`` -> ``three point one four``).

Numerals are written in the canonical form of :func:`seq2seq.data.normalize.normalize_numeral`
(no separators, no leading zeros, no trailing zeros after the point, no ``-0``), which is the
form the model reads at translation time too. Targets are num2words' spelling, except that the
sign and the decimal digits are spelled here in num2words' own words (see :func:`spell`: it
drops the minus of ``-0.5`` and misreads long decimals through a float).

The test set is stratified (:func:`strata`) and disjoint from training and validation. Every
integer below 1,000 in absolute value must be learned, so those are all in training; the test
lists them all again as one stratum of their own, and every other test numeral is unseen.

:func:`sample_numbers`, :func:`balance_lengths` and :func:`place_value_vectors` are the older,
narrower data of the staged study (non-negative integers of 1 to 9 digits; see
``recipes/staged_vs_end2end/README.md``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import numpy as np
from num2words import num2words

from seq2seq.data.normalize import normalize_numeral

MAX_DIGITS = 13  # integer digits: up to 9,999,999,999,999 (nine trillion; 구조 in Korean)
MAX_DECIMALS = 4
SHAPES = ("uniform", "round", "zero runs", "repeated")
SHAPE_WEIGHTS = (35, 25, 25, 15)
NEGATIVE_SHARE = 0.15
DECIMAL_SHARE = 0.20
EXHAUSTIVE_BELOW = 1000  # every integer with |n| < this is in training (and tested as one stratum)


# ----------------------------------------------------------------------------- the mixture
def _digits(rng: random.Random, count: int, first_nonzero: bool = False) -> list[str]:
    out = [str(rng.randrange(10)) for _ in range(count)]
    if first_nonzero and out:
        out[0] = str(rng.randrange(1, 10))
    return out


def _integer_part(rng: random.Random, length: int, shape: str) -> str:
    """An integer of exactly ``length`` digits (no leading zero unless it is ``0``) of ``shape``."""
    if length == 1:
        return str(rng.randrange(10))
    if shape == "round":  # m x 10^k, m of 1..3 significant digits, k >= 1
        significant = rng.randint(1, min(3, length - 1))
        return "".join(_digits(rng, significant, first_nonzero=True)) + "0" * (length - significant)
    digits = _digits(rng, length, first_nonzero=True)
    if shape == "zero runs":  # 1-3 runs of zeros after the first digit; often whole groups
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:  # a whole group of 3 (thousands) or 4 (만, 억, 조) digits
                group = rng.choice((3, 4))
                end = length - group * rng.randint(0, (length - 1) // group)
                start = max(1, end - group)
            else:
                start = rng.randrange(1, length)
                end = rng.randint(start + 1, length)
            digits[start:end] = "0" * (end - start)
    elif shape == "repeated":  # one digit repeated: all of it, or a long run inside
        digit = str(rng.randrange(1, 10))
        if rng.random() < 0.5 or length < 4:
            digits = [digit] * length
        else:
            start = rng.randrange(0, length - 2)
            end = rng.randint(start + 3, length)
            digits[start:end] = digit * (end - start)
    return "".join(digits)


def sample_numeral(rng: random.Random) -> str:
    """One numeral drawn from the training mixture (see the module docstring), canonical form."""
    length = rng.randint(1, MAX_DIGITS)
    shape = rng.choices(SHAPES, weights=SHAPE_WEIGHTS)[0]
    text = _integer_part(rng, length, shape)
    if rng.random() < DECIMAL_SHARE:
        places = rng.randint(1, MAX_DECIMALS)
        text += "." + "".join(_digits(rng, places - 1)) + str(rng.randrange(1, 10))
    if rng.random() < NEGATIVE_SHARE:
        text = "-" + text
    return normalize_numeral(text)  # "-0" -> "0"


def sample_numerals(count: int, rng: random.Random, exclude: Iterable[str] = ()) -> list[str]:
    """``count`` distinct numerals from the mixture, none of them in ``exclude``."""
    seen = set(exclude)
    out: list[str] = []
    while len(out) < count:
        text = sample_numeral(rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def small_integers() -> list[str]:
    """Every integer with absolute value below :data:`EXHAUSTIVE_BELOW`, negative ones included."""
    return [str(n) for n in range(-EXHAUSTIVE_BELOW + 1, EXHAUSTIVE_BELOW)]


# ----------------------------------------------------------------------------- strata
def integer_digits(numeral: str) -> str:
    return numeral.lstrip("-").split(".")[0]


def zero_structure(numeral: str) -> str:
    """``round`` (0, or m x 10^k with k >= 1 and m of at most 3 digits), ``zeros inside`` (any
    other integer part holding a 0) or ``no zeros``."""
    digits = integer_digits(numeral)
    significant = digits.rstrip("0")
    if digits == "0" or (len(significant) < len(digits) and len(significant) <= 3):
        return "round"
    return "zeros inside" if "0" in digits else "no zeros"


def has_repeated_digits(numeral: str) -> bool:
    """The integer part holds a run of 4 or more of the same non-zero digit."""
    digits = integer_digits(numeral)
    return any(d * 4 in digits for d in "123456789")


def strata(numeral: str) -> list[str]:
    """The strata a canonical numeral counts in (one per family, plus ``repeated digits``)."""
    small = "." not in numeral and abs(int(numeral)) < EXHAUSTIVE_BELOW
    names = [
        f"length {len(integer_digits(numeral)):>2}",
        f"zeros: {zero_structure(numeral)}",
        "sign: negative" if numeral.startswith("-") else "sign: positive",
        "form: decimal" if "." in numeral else "form: integer",
    ]
    if has_repeated_digits(numeral):
        names.append("repeated digits")
    if small:
        names.append(f"every |n| < {EXHAUSTIVE_BELOW} (also in training)")
    return names


# ----------------------------------------------------------------------------- spelling
_WORDS: dict[str, tuple[str, str, list[str]]] = {}


def _words(lang: str) -> tuple[str, str, list[str]]:
    """num2words' minus prefix, decimal separator and digit words for ``lang``, read off its own
    spelling of -1, 1.5 and 0..9."""
    if lang not in _WORDS:
        minus_one, one, one_point_five = (num2words(x, lang=lang) for x in (-1, 1, Decimal("1.5")))
        five = num2words(5, lang=lang)
        point = one_point_five[len(one) : len(one_point_five) - len(five)]
        _WORDS[lang] = (
            minus_one[: len(minus_one) - len(one)],
            point,
            [num2words(d, lang=lang) for d in range(10)],
        )
    return _WORDS[lang]


def spell(numeral: str | int, lang: str) -> str:
    """num2words' spelling of a canonical numeral (``"-3.14"``), or of an int.

    Integers are num2words' own. Two num2words bugs are worked around, with its own words: it
    drops the minus of numbers between -1 and 0 (``-0.5`` -> ``zero point five``), and it reads
    decimals through a float, so the last digits of long ones come out wrong
    (``7263000470984.84`` -> ``... point eight three``). The sign and the decimal digits are
    therefore spelled here, as num2words spells them where it is right (``minus``, ``point``,
    one word per digit; ``마이너스``, ``점`` in Korean).
    """
    minus, point, digit_words = _words(lang)
    text = str(numeral)
    negative = text.startswith("-")
    integer, _, fraction = text.lstrip("-").partition(".")
    words = num2words(int(integer), lang=lang)
    if fraction:
        words += point + " ".join(digit_words[int(d)] for d in fraction)
    return minus + words if negative else words


def write_tsv(path: Path, numerals: list[str], lang: str) -> Path:
    """``numeral<TAB>words`` lines, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{n}\t{spell(n, lang)}\n" for n in numerals), encoding="utf-8")
    tmp.replace(path)
    return path


def write_splits(out_dir: Path, lang: str, sizes: dict[str, int], seed: int) -> dict[str, Path]:
    """Write ``{split}.tsv`` (``numeral<TAB>words``) for the splits in ``sizes``; return the paths.

    ``valid`` and ``test`` hold distinct numerals from the mixture, in no other split; ``test``
    ends with every integer with |n| < 1,000 (their own stratum). ``train`` holds those small
    integers plus ``sizes["train"]`` draws from the mixture that are not held out. Training
    draws may repeat: the mixture's proportions are kept, so ``7`` (one of only 20 one-digit
    integers) comes as often as the mixture says, not once. Deterministic from ``seed``; train
    sizes nest (a smaller training set is a prefix of a larger one).
    """
    small = small_integers()
    held_out_count = sizes.get("valid", 0) + sizes.get("test", 0)
    held_out = sample_numerals(held_out_count, random.Random(seed + 1), exclude=small)
    splits = {
        "valid": held_out[: sizes.get("valid", 0)],
        "test": held_out[sizes.get("valid", 0) :] + small,
    }
    if "train" in sizes:
        rng, excluded = random.Random(seed), set(held_out)
        draws: list[str] = []
        while len(draws) < sizes["train"]:
            numeral = sample_numeral(rng)
            if numeral not in excluded:
                draws.append(numeral)
        splits["train"] = small + draws
    return {name: write_tsv(out_dir / f"{name}.tsv", splits[name], lang) for name in sizes}


# ----------------------------------------------------------------------------- staged study
STAGED_MAX_DIGITS = 9
PLACE_CLASSES = 11  # per decimal place: the digit 0-9, or 10 when the number is shorter


def sample_numbers(count: int, seed: int) -> list[int]:
    """``count`` distinct non-negative integers, lengths 1..9 digits equally likely (the staged
    study's data: its place-value context vector has 9 places)."""
    rng = random.Random(seed)
    per_length = {d: 10**d - 10 ** (d - 1) for d in range(2, STAGED_MAX_DIGITS + 1)}
    per_length[1] = 10  # 0..9
    capacity = sum(per_length.values())
    if count > capacity:
        raise ValueError(f"cannot draw {count} distinct numbers below 10^{STAGED_MAX_DIGITS}")
    seen: set[int] = set()
    taken = dict.fromkeys(per_length, 0)  # numbers drawn so far, per length
    numbers: list[int] = []
    while len(numbers) < count:
        digits = rng.randint(1, STAGED_MAX_DIGITS)
        if taken[digits] >= per_length[digits]:
            continue  # every number of this length is drawn already (short lengths only)
        n = rng.randrange(10) if digits == 1 else rng.randrange(10 ** (digits - 1), 10**digits)
        if n not in seen:
            seen.add(n)
            taken[digits] += 1
            numbers.append(n)
    return numbers


def balance_lengths(numbers: list[int]) -> list[int]:
    """Repeat the numbers of rare lengths (1-3 digits: only 10, 90, 900 exist) so that every
    length has about as many training rows as the most frequent one."""
    by_length: dict[int, list[int]] = {}
    for n in numbers:
        by_length.setdefault(len(str(n)), []).append(n)
    target = max(len(group) for group in by_length.values())
    balanced = []
    for n in numbers:
        balanced.extend([n] * max(1, target // len(by_length[len(str(n))])))
    return balanced


def place_value_vectors(numerals: list[str]) -> np.ndarray:
    """The number's value as a context target: one one-hot block of 11 per decimal place.

    Block 0 is the units, block 8 the hundred-millions; class 10 means "no digit here".
    ``"4021"`` -> blocks [1, 2, 0, 4, 10, 10, 10, 10, 10]. Shape (len(numerals), 99), float32.
    """
    vectors = np.zeros((len(numerals), STAGED_MAX_DIGITS, PLACE_CLASSES), dtype=np.float32)
    for row, numeral in enumerate(numerals):
        digits = numeral[::-1]
        if len(digits) > STAGED_MAX_DIGITS or not digits.isdigit():
            raise ValueError(f"line {row + 1}: '{numeral}' is not a numeral of 1 to {STAGED_MAX_DIGITS} digits")
        for place in range(STAGED_MAX_DIGITS):
            vectors[row, place, int(digits[place]) if place < len(digits) else 10] = 1.0
    return vectors.reshape(len(numerals), STAGED_MAX_DIGITS * PLACE_CLASSES)
