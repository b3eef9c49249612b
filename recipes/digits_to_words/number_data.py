"""Generated data for digits -> words: numbers 0..999,999,999 and their num2words spelling.

Every length from 1 to 9 digits gets the same share of examples (uniform sampling over the
range would give almost only 9-digit numbers); the few short numbers that exist are repeated
in the training split so that the model sees them as often as the long ones. Splits are
disjoint: no test number is seen in training. Everything is deterministic from the seed.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from num2words import num2words

MAX_DIGITS = 9
PLACE_CLASSES = 11  # per decimal place: the digit 0-9, or 10 when the number is shorter


def sample_numbers(count: int, seed: int) -> list[int]:
    """``count`` distinct numbers, lengths 1..9 digits equally likely (1-digit: all ten)."""
    rng = random.Random(seed)
    per_length = {d: 10**d - 10 ** (d - 1) for d in range(2, MAX_DIGITS + 1)}
    per_length[1] = 10  # 0..9
    capacity = sum(per_length.values())
    if count > capacity:
        raise ValueError(f"cannot draw {count} distinct numbers below 10^{MAX_DIGITS}")
    seen: set[int] = set()
    taken = dict.fromkeys(per_length, 0)  # numbers drawn so far, per length
    numbers: list[int] = []
    while len(numbers) < count:
        digits = rng.randint(1, MAX_DIGITS)
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


def spell(n: int, lang: str) -> str:
    return num2words(n, lang=lang)


def write_splits(out_dir: Path, lang: str, sizes: dict[str, int], seed: int) -> dict[str, Path]:
    """Write ``{split}.tsv`` files (``digits<TAB>words``) with disjoint numbers; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = sample_numbers(sum(sizes.values()), seed)
    paths = {}
    start = 0
    for split, size in sizes.items():
        chunk = numbers[start : start + size]
        start += size
        if split == "train":
            chunk = balance_lengths(chunk)
        path = out_dir / f"{split}.tsv"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{n}\t{spell(n, lang)}\n" for n in chunk), encoding="utf-8")
        tmp.replace(path)
        paths[split] = path
    return paths


def place_value_vectors(numerals: list[str]) -> np.ndarray:
    """The number's value as a context target: one one-hot block of 11 per decimal place.

    Block 0 is the units, block 8 the hundred-millions; class 10 means "no digit here".
    ``"4021"`` -> blocks [1, 2, 0, 4, 10, 10, 10, 10, 10]. Shape (len(numerals), 99), float32.
    """
    vectors = np.zeros((len(numerals), MAX_DIGITS, PLACE_CLASSES), dtype=np.float32)
    for row, numeral in enumerate(numerals):
        digits = numeral[::-1]
        if len(digits) > MAX_DIGITS or not digits.isdigit():
            raise ValueError(f"line {row + 1}: '{numeral}' is not a numeral of 1 to {MAX_DIGITS} digits")
        for place in range(MAX_DIGITS):
            vectors[row, place, int(digits[place]) if place < len(digits) else 10] = 1.0
    return vectors.reshape(len(numerals), MAX_DIGITS * PLACE_CLASSES)
