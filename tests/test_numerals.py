"""Numerals: the source normalisation, the digits recipe's training mixture and its strata, and
the out-of-domain report that translate gives for inputs a model cannot read."""

import random
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from num2words import num2words

from seq2seq.config import load_config
from seq2seq.data import read_lines
from seq2seq.data.domain import find_out_of_domain, source_limits
from seq2seq.data.normalize import (
    is_canonical_numeral,
    normalize_numeral,
    numeral_digits,
    source_normalizer,
)
from seq2seq.data.tokenizer import UNK_ID
from seq2seq.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes" / "digits_to_words"))
from number_data import (  # noqa: E402
    EXHAUSTIVE_BELOW,
    MAX_DECIMALS,
    MAX_DIGITS,
    sample_numeral,
    spell,
    strata,
    write_splits,
    zero_structure,
)


# ---------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,000", "1000"),
        ("1,000,000", "1000000"),
        ("12,345.50", "12345.5"),
        ("1 000", "1000"),
        ("1_000", "1000"),
        ("1\u202f000", "1000"),
        ("007", "7"),
        ("-007", "-7"),
        ("000", "0"),
        ("-5", "-5"),
        ("\u22125", "-5"),
        ("+5", "5"),
        ("-0", "0"),
        ("-0.00", "0"),
        ("3.14", "3.14"),
        ("3.140", "3.14"),
        ("2.0", "2"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        (" 42 \t", "42"),
        # not numerals: left as they are (stripped), for the unknown-character check to report
        ("abc", "abc"),
        ("3,14", "3,14"),
        ("1,00,000", "1,00,000"),
        ("1,000 000", "1,000 000"),
        ("1.2.3", "1.2.3"),
        ("--5", "--5"),
        ("", ""),
        ("-", "-"),
        (".", "."),
        ("\u0663", "\u0663"),
    ],
)
def test_normalize_numeral(text, expected):
    assert normalize_numeral(text) == expected


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(min_value=-(10**13), max_value=10**13, places=4, allow_nan=False, allow_infinity=False),
    zeros=st.integers(0, 3),
    grouped=st.booleans(),
)
def test_normalisation_keeps_the_value_and_is_idempotent(value, zeros, grouped):
    integer, _, fraction = f"{abs(value):f}".partition(".")
    if grouped:
        integer = f"{int(integer):,}"
    written = (
        ("-" if value < 0 else "") + "0" * (0 if grouped else zeros) + integer + ("." + fraction if fraction else "")
    )
    canonical = normalize_numeral(written)
    assert is_canonical_numeral(canonical), (written, canonical)
    assert Decimal(canonical) == value
    assert normalize_numeral(canonical) == canonical
    assert numeral_digits(canonical)[1] == len(fraction.rstrip("0"))


def test_source_normalizer_names_and_config():
    assert source_normalizer("none")(" 1,000 ") == " 1,000 "
    assert source_normalizer("numerals")(" 1,000 ") == "1000"
    with pytest.raises(ValueError, match="numerals"):
        source_normalizer("digits")
    with pytest.raises(ConfigError, match="data.normalize"):
        load_config(None, ["data.normalize=digits"])
    with pytest.raises(ConfigError, match="task=translation"):
        load_config(None, ["task=autoencoder", "data.normalize=numerals"])


# ---------------------------------------------------------------------------- the mixture
FAMILIES = {
    "length": {f"length {n:>2}" for n in range(1, MAX_DIGITS + 1)},
    "zeros": {"zeros: no zeros", "zeros: zeros inside", "zeros: round"},
    "sign": {"sign: positive", "sign: negative"},
    "form": {"form: integer", "form: decimal"},
    "other": {"repeated digits"},
}


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_sampler_produces_every_stratum(seed):
    rng = random.Random(seed)
    numerals = [sample_numeral(rng) for _ in range(3000)]
    seen = {name for n in numerals for name in strata(n)}
    for family, names in FAMILIES.items():
        assert names <= seen, (family, names - seen)
    assert all(normalize_numeral(n) == n and is_canonical_numeral(n) for n in numerals)
    shapes = [numeral_digits(n) for n in numerals]
    assert max(i for i, _ in shapes) == MAX_DIGITS and max(d for _, d in shapes) == MAX_DECIMALS
    # Every length is about equally likely (1/13 = 7.7% each), round numbers are common.
    for n_digits in range(1, MAX_DIGITS + 1):
        assert 0.04 < sum(i == n_digits for i, _ in shapes) / len(numerals) < 0.12
    assert sum(zero_structure(n) == "round" for n in numerals) > 0.2 * len(numerals)


def test_strata_of_examples():
    assert strata("4021") == ["length  4", "zeros: zeros inside", "sign: positive", "form: integer"]
    assert strata("1000000")[:2] == ["length  7", "zeros: round"]
    assert zero_structure("1230000") == "round" and zero_structure("1234000") == "zeros inside"
    assert zero_structure("0") == "round" and zero_structure("987") == "no zeros"
    assert "repeated digits" in strata("-77777.5") and "sign: negative" in strata("-77777.5")
    assert strata("-3.14")[2:] == ["sign: negative", "form: decimal"]
    assert f"every |n| < {EXHAUSTIVE_BELOW} (also in training)" in strata("-999")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_spelling_is_num2words_with_the_sign_spelled_out(lang):
    for numeral in [
        "0",
        "7",
        "4021",
        "1000000000000",
        "9999999999999",
        "3.14",
        "0.05",
        "-5",
        "-1234.5",
    ]:
        body = numeral.lstrip("-")
        expected = num2words(Decimal(body) if "." in body else int(body), lang=lang)
        minus = {"en": "minus ", "ko": "마이너스 "}[lang]
        assert spell(numeral, lang) == (minus if numeral.startswith("-") else "") + expected
    # num2words reads decimals through a float: the last digits of long ones come out wrong
    assert num2words(Decimal("7263000470984.84")).endswith("point eight three")
    assert spell("7263000470984.84", lang).endswith({"en": "point eight four", "ko": "점 팔 사"}[lang])
    # num2words itself loses the sign between -1 and 0; the recipe does not
    assert spell("-0.5", lang) == {"en": "minus zero point five", "ko": "마이너스 영 점 오"}[lang]
    assert spell("4021", lang) == {"en": "four thousand and twenty-one", "ko": "사천이십일"}[lang]


@settings(max_examples=200, deadline=None)
@given(
    value=st.decimals(min_value=-9999, max_value=9999, places=3, allow_nan=False, allow_infinity=False),
    lang=st.sampled_from(["en", "ko"]),
)
def test_spelling_of_short_decimals_is_num2words_own(value, lang):
    numeral = normalize_numeral(f"{value:f}")
    if abs(value) >= 1 or value == 0:  # num2words is right here (no float error, no lost sign)
        body = numeral.lstrip("-")
        expected = num2words(Decimal(body) if "." in body else int(body), lang=lang)
        minus = {"en": "minus ", "ko": "마이너스 "}[lang]
        assert spell(numeral, lang) == (minus if numeral.startswith("-") else "") + expected


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_splits_are_disjoint_stratified_and_num2words_verbatim(tmp_path, lang):
    paths = write_splits(tmp_path, lang, {"train": 3000, "valid": 200, "test": 1500}, seed=5)
    numerals = {}
    for split, path in paths.items():
        rows = [line.split("\t") for line in read_lines(path)]
        assert all(len(r) == 2 and r[1] == spell(r[0], lang) for r in rows)
        numerals[split] = [r[0] for r in rows]
    small = {str(n) for n in range(-EXHAUSTIVE_BELOW + 1, EXHAUSTIVE_BELOW)}
    train, valid, test = (set(numerals[s]) for s in ("train", "valid", "test"))
    assert small <= train and small <= test  # every small integer is learned, and tested as its own stratum
    assert not (train & test) - small and not train & valid and not valid & test
    assert len(numerals["test"]) == 1500 + len(small) == len(test)
    seen = {name for n in numerals["test"] for name in strata(n)}
    assert set().union(*FAMILIES.values()) <= seen
    # Training sets nest: a smaller one is a prefix of a larger one (with the same held-out sets).
    larger = write_splits(tmp_path / "larger", lang, {"train": 4000, "valid": 200, "test": 1500}, seed=5)
    assert read_lines(larger["train"])[: len(numerals["train"])] == read_lines(paths["train"])
    assert read_lines(larger["test"]) == read_lines(paths["test"])


# ---------------------------------------------------------------------------- out of domain
def test_find_out_of_domain_for_numerals():
    sources = ["12", "1a", "1.2.3", "12345678901234", "1.23456", "", "-5"]
    ids = [[5, 6], [5, UNK_ID], [5, 9, 6, 9, 7], [5] * 14, [5, 9, 6, 7, 8, 5, 6], [], [4, 8]]
    limits = source_limits([[5] * 19], ["-1234567890123.4567"], "numerals")
    assert limits == {"max_tokens": 19, "max_integer_digits": 13, "max_decimal_digits": 4}
    report = find_out_of_domain(sources, ids, limits, "numerals")
    assert report.unknown_characters == [1] and report.not_numerals == [2] and report.too_long == [3, 4]
    assert report.lines == [1, 2, 3, 4]
    summary = report.summary()
    assert summary.startswith("4 of 7 input line(s)")
    assert "line 2" in summary and "line 3" in summary and "lines 4, 5" in summary and "13 integer digits" in summary
    assert not find_out_of_domain(["12", ""], [[5, 6], []], limits, "numerals")


def test_find_out_of_domain_for_text_lists_at_most_ten_lines():
    ids = [[5, UNK_ID]] * 25 + [[5] * 9]
    report = find_out_of_domain(["x"] * 26, ids, {"max_tokens": 8}, "none")
    assert report.too_long == [25] and len(report.unknown_characters) == 25
    assert "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (and 15 more)" in report.summary()
    assert "at most 8 tokens): line 26" in report.summary()
    # A checkpoint without source limits (older versions): only unknown characters are checked.
    assert find_out_of_domain(["x"], [[5] * 900], None, "none").lines == []
