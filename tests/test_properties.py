"""Property tests (hypothesis): tokenizer round trips, batching, padding invariance, noise.

Each section states the exact contract it checks; limitations found on the way are written
down next to the test that shows them.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
import random
import unicodedata
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sentencepiece as spm
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import Tensor

from seq2seq.config import Config, ModelConfig, SearchConfig
from seq2seq.data.batching import Example, collate, collate_source, encode_pairs
from seq2seq.data.loading import ParallelText
from seq2seq.data.noise import add_noise, local_shuffle, word_dropout
from seq2seq.data.samplers import TokenBudgetBatchSampler
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SpmTokenizer, TokenizerPair
from seq2seq.infer.search import Hypothesis, SearchSpec, generate
from seq2seq.infer.translator import Translator, encode_sources, length_batches
from seq2seq.models import Seq2SeqModel, build_model
from seq2seq.models.types import Decoder, Encoded, Encoder
from seq2seq.train.objectives import Objective, choose_objective

# ============================================================================ 1. tokenizer
#
# The round-trip contract. seq2seq trains SentencePiece with the ``nmt_nfkc`` normalisation rule
# (``nmt_nfkc_cf`` with ``tokenizer.lowercase``), SentencePiece's default
# ``remove_extra_whitespaces`` and no ``byte_fallback``. For text x all of whose characters,
# once normalised, have a piece in the model, and whose whitespace is among WHITESPACE below:
#
#     decode(encode(x)) == " ".join(NFKC(x).split())
#
# i.e. NFKC (ligatures, full-width, circled and other compatibility forms become plain ones;
# decomposed accents and Hangul jamo are composed), every run of whitespace becomes one space,
# leading and trailing whitespace is dropped. With ``lowercase``: NFKC, then Unicode *simple*
# case folding (one character to one, so "ß" stays "ß" where Python's casefold gives "ss"),
# then NFKC again.
#
# SentencePiece's whitespace differs from Python's ``str.split`` on some code points (hence
# WHITESPACE): it deletes the C0 controls other than tab, newline, form feed and CR, among them
# U+000B and U+001C-U+001F that Python splits on ("a\x0bb" -> "ab"), as well as U+007F, U+008F
# and U+009F; it turns into a space some invisible characters Python keeps: U+200B, U+200C
# (zero-width non-joiner, meaningful in e.g. Persian), U+200E/U+200F (direction marks), U+FEFF;
# and it keeps U+0085 (NEL) as a character, which a model trained on ordinary text does not
# cover. For *any* text the exact rule is the model's own normaliser; the arbitrary-text
# property checks against it.
#
# Information lost by design (SentencePiece's or seq2seq's, not bugs):
#   * characters the model does not cover encode to <unk>; a run of them is one <unk>, so their
#     number is lost too; <unk> decodes to " ⁇ " with spaces around it, so such an output can
#     start with a space or hold double spaces ("日本語 a" -> " ⁇  a");
#   * U+2581 "▁" (SentencePiece's space marker) in the input is read as a space;
#   * normalising is not always idempotent: a deleted control character between a letter and
#     a combining mark leaves them uncomposed ("A\x08\u0300" -> "A\u0300", which would
#     normalise again to "À"), so decode(encode(x)) is then not a fixed point of the round trip;
#   * decode drops PAD/BOS/EOS wherever they are and keeps UNK (as ⁇).
# seq2seq never trains with ``byte_fallback``; a model trained with it (a user's own, loaded
# through SpmTokenizer) covers every character, but decoding byte pieces that are not valid
# UTF-8 (which a model can generate) gives one U+FFFD per bad byte, not an error.
# A str with a lone surrogate has no UTF-8 form: encode raises ValueError naming it.

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèêëàâäöüßçñÉÀÖÜ"
KOREAN = "가나다라마바사아자차카타파하한국어문장입니다"
DIGITS = "0123456789"
PUNCT = ".,;:!?'\"()-%&/"
ALPHABET = LATIN + KOREAN + DIGITS + PUNCT
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\x0c", "\xa0", "\u1680", "\u2009", "\u2028", "\u3000"]
# Units NFKC changes into covered characters (ligatures, width and compatibility forms,
# decomposed accents, Hangul jamo): the round trip gives their NFKC form.
NFKC_UNITS = ["ﬁ", "ﬀ", "Ａ", "ｋ", "①", "²", "™", "…", "Ⅻ", "㎞", "e\u0301", "o\u0308", "\u1100\u1161"]


def _training_text() -> list[str]:
    rng = random.Random(0)

    def word() -> str:
        pool = rng.choice([LATIN, KOREAN, DIGITS, PUNCT, ALPHABET])
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 8)))

    lines = [" ".join(word() for _ in range(rng.randint(1, 12))) for _ in range(1500)]
    return [*lines, ALPHABET]  # every character at least once


TOKENIZER_KINDS = ["bpe", "unigram", "char", "bpe_lower", "bpe_bytes"]


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, SpmTokenizer]:
    """Small models of each kind, trained once on text in several scripts."""
    text = _training_text()
    toks = {
        "bpe": SpmTokenizer.train(text, vocab_size=300),
        "unigram": SpmTokenizer.train(text, vocab_size=300, model_type="unigram"),
        "char": SpmTokenizer.train(text, vocab_size=1, model_type="char"),
        "bpe_lower": SpmTokenizer.train(text, vocab_size=300, lowercase=True),
        "bpe_bytes": _byte_fallback_model(text),
    }
    for name, tok in toks.items():  # the premise of the round-trip property
        covered = ALPHABET.casefold() if name.endswith("lower") else ALPHABET
        assert all(tok.piece_to_id(c) != UNK_ID for c in covered), name
    return toks


def _byte_fallback_model(text: list[str]) -> SpmTokenizer:
    """A model seq2seq would not train (byte_fallback), made as a user could make one."""
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=writer,
        vocab_size=400,
        byte_fallback=True,
        character_coverage=1.0,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        normalization_rule_name="nmt_nfkc",
        minloglevel=2,
    )
    return SpmTokenizer(writer.getvalue())


def expected_roundtrip(text: str, lowercase: bool = False) -> str:
    """The documented contract: NFKC (+ case folding), whitespace runs -> one space, stripped."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:  # fold the NFKC form ("™" -> "TM" -> "tm"), then NFKC again
        text = unicodedata.normalize("NFKC", "".join(map(_simple_casefold, text)))
    return " ".join(text.split())


def _simple_casefold(c: str) -> str:
    """Unicode *simple* case folding of one character (one character out, so "ß" stays "ß",
    unlike Python's full ``str.casefold``), which is what ``nmt_nfkc_cf`` applies."""
    for folded in (c.casefold(), c.lower()):
        if len(folded) == 1:
            return folded
    return c


covered_text = st.lists(
    st.one_of(
        st.sampled_from(ALPHABET),
        st.sampled_from(WHITESPACE),
        st.sampled_from(NFKC_UNITS),
    ),
    max_size=40,
).map("".join)

# Characters where SentencePiece's normaliser and Python disagree, or that are special to it.
TRICKY = [
    "\x00",
    "\x07",
    "\x08",
    "\x0b",
    "\x1c",
    "\x7f",
    "\x85",
    "\x8f",
    "\xad",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u2028",
    "\ufeff",
    "\u2581",
    "⁇",
    "İ",
    "ẞ",
    "ς",
    "\u0301",
    "\U0001f600",
]
# Arbitrary text: everything hypothesis generates (controls, unassigned and private-use code
# points, other scripts, emoji, empty), and mixes of covered text, tricky and any characters.
any_text = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8"), max_size=60),
    st.lists(st.one_of(covered_text, st.sampled_from(TRICKY), st.text(max_size=3)), max_size=6).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(text=covered_text, kind=st.sampled_from(TOKENIZER_KINDS))
def test_tokenizer_roundtrip_of_covered_text(tokenizers: dict[str, SpmTokenizer], text: str, kind: str) -> None:
    tok = tokenizers[kind]
    ids = tok.encode(text)
    assert UNK_ID not in ids
    assert tok.decode(ids) == expected_roundtrip(text, lowercase=kind.endswith("lower"))
    # special ids around or between the pieces change nothing
    assert tok.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == tok.decode(ids)


def _model_normalised(tok: SpmTokenizer, text: str) -> str:
    """What decode(encode(text)) is when nothing is unknown: SentencePiece's own normaliser
    with its space marker read back as a space (and the dummy prefix dropped)."""
    return tok._sp.normalize(text).replace("▁", " ").strip(" ")


@settings(max_examples=400, deadline=None)
@given(text=any_text, kind=st.sampled_from(TOKENIZER_KINDS))
def test_tokenizer_arbitrary_text(tokenizers: dict[str, SpmTokenizer], text: str, kind: str) -> None:
    tok = tokenizers[kind]
    ids = tok.encode(text)  # never raises
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
    assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)  # only UNK among the special ids
    assert tok.encode_batch([text, text]) == [ids, ids]
    out = tok.decode(ids)
    assert isinstance(out, str)
    assert (out == "") == (ids == [])  # (out may be Python whitespace, e.g. a kept U+0085)
    if kind == "bpe_bytes":
        assert UNK_ID not in ids  # byte fallback: every character is covered
    if UNK_ID in ids:
        assert "⁇" in out  # the lost characters are marked, not silently dropped
    else:
        assert out == _model_normalised(tok, text)
        # Re-encoding the output gives the same ids, except where normalising again changes it:
        # SentencePiece's normaliser is not idempotent when a deleted control character stood
        # between a letter and a combining mark ("A\x08\u0300" -> "A\u0300" -> "À").
        if _model_normalised(tok, out) == out:
            assert tok.encode(out) == ids


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 299), max_size=30))
def test_tokenizer_decode_any_ids(tokenizers: dict[str, SpmTokenizer], ids: list[int]) -> None:
    tok = tokenizers["bpe"]
    assert tok.vocab_size == 300
    out = tok.decode(ids)  # any in-range ids decode (specials are skipped)
    assert out == tok.decode([i for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)])
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([*ids, tok.vocab_size])


def test_tokenizer_byte_fallback_decodes_invalid_utf8_to_replacement_characters(
    tokenizers: dict[str, SpmTokenizer],
) -> None:
    # What a model could generate with byte pieces: a lone lead byte, a truncated sequence.
    tok = tokenizers["bpe_bytes"]
    lead, cont = tok.piece_to_id("<0xE3>"), tok.piece_to_id("<0x81>")
    a = tok.piece_to_id("a")
    assert UNK_ID not in (lead, cont, a)
    assert tok.decode([lead]) == "\ufffd"
    assert tok.decode([a, lead, cont, a]) == "a\ufffd\ufffda"  # no error, the bytes are lost
    assert tok.decode(tok.encode("日本")) == "日本"  # valid byte sequences decode exactly


@settings(max_examples=30, deadline=None)
@given(
    before=st.text(max_size=5),
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    after=st.text(max_size=5),
)
def test_tokenizer_lone_surrogate_is_a_clear_error(
    tokenizers: dict[str, SpmTokenizer], before: str, surrogate: str, after: str
) -> None:
    # A str with a lone surrogate (e.g. from errors="surrogateescape") has no UTF-8 form;
    # SentencePiece's binding reported it as an opaque cast error, now it is a ValueError.
    tok = tokenizers["bpe"]
    text = before + surrogate + after
    with pytest.raises(ValueError, match="lone surrogate"):
        tok.encode(text)
    with pytest.raises(ValueError, match="text 2 .*lone surrogate"):
        tok.encode_batch(["fine", text])


# ============================================================================ 2. batching
#
# Batching may pad and regroup sentences, but never drop, duplicate or reorder them in a way
# that cannot be undone: every example lands in exactly one batch per epoch, within the token
# budget, the batches of an epoch are a function of (seed, epoch) alone, padding is removable,
# and translation hands back one output per input line, in input order.

lengths_st = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=120)


@settings(max_examples=200, deadline=None)
@given(
    lengths=lengths_st,
    max_tokens=st.integers(1, 300),
    max_sentences=st.integers(0, 8),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 1000),
)
def test_sampler_partitions_every_epoch(
    lengths: list[tuple[int, int]], max_tokens: int, max_sentences: int, shuffle: bool, seed: int, epoch: int
) -> None:
    src = [a for a, _ in lengths]
    tgt = [b for _, b in lengths]

    def make() -> TokenBudgetBatchSampler:
        return TokenBudgetBatchSampler(src, tgt, max_tokens, max_sentences, shuffle=shuffle, seed=seed)

    sampler = make()
    batches = sampler.batches(epoch)
    # every index exactly once, no empty batch, the advertised number of batches
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(batches) and len(batches) == len(sampler)
    for b in batches:
        # padded size n * max(longest source, longest target + EOS) within the budget, unless
        # a single example is over it on its own
        width = max(max(src[i], tgt[i] + 1) for i in b)
        assert len(b) * width <= max_tokens or len(b) == 1
        if max_sentences:
            assert len(b) <= max_sentences
        keys = [(tgt[i], src[i]) for i in b]
        assert keys == sorted(keys)  # length-bucketed: a batch is a run of the length order
    if not shuffle:  # length order, ties by position: what decoding relies on
        flat = [i for b in batches for i in b]
        assert flat == sorted(range(len(lengths)), key=lambda i: (tgt[i], src[i], i))
    # deterministic for (seed, epoch), whatever was asked before
    sampler.batches(epoch + 1)
    assert sampler.batches(epoch) == batches
    assert make().batches(epoch) == batches
    sampler.set_epoch(epoch)
    assert list(sampler) == batches
    # the returned lists are copies: a caller editing them changes nothing
    got = sampler.batches(epoch)
    if got:
        got[0].clear()
        got.clear()
        assert sampler.batches(epoch) == batches


example_ids = st.lists(st.integers(1, 5000), max_size=15)


@st.composite
def examples_st(draw: st.DrawFn) -> list[Example]:
    pairs = draw(st.lists(st.tuples(example_ids, example_ids), min_size=1, max_size=8))
    indices = draw(st.permutations(range(len(pairs) + 3)))[: len(pairs)]
    return [Example(i, s, t) for i, (s, t) in zip(indices, pairs)]


@settings(max_examples=100, deadline=None)
@given(examples=examples_st())
def test_collate_round_trips_token_ids(examples: list[Example]) -> None:
    before = copy.deepcopy(examples)
    context = np.arange(len(examples) * 2 + 6, dtype=np.float32).reshape(-1, 2)
    batch = collate(examples, context)
    assert examples == before  # nothing mutated
    assert batch.indices == [e.index for e in examples]
    assert batch.src.shape[1] == max(1, max(len(e.src) for e in examples))
    assert batch.n_tgt_tokens == sum(len(e.tgt) + 1 for e in examples) == int(batch.tgt_mask.sum())
    assert batch.n_src_tokens == sum(len(e.src) for e in examples)
    for row, e in enumerate(examples):
        m = batch.src_mask[row]
        assert m.tolist() == [k < len(e.src) for k in range(len(m))]  # real tokens, then padding
        assert batch.src[row][m].tolist() == e.src  # strip padding -> the original ids
        assert (batch.src[row][~m] == PAD_ID).all()
        tm = batch.tgt_mask[row]
        assert tm.tolist() == [k <= len(e.tgt) for k in range(len(tm))]
        assert batch.tgt_in[row][tm].tolist() == [BOS_ID, *e.tgt]
        assert batch.tgt_out[row][tm].tolist() == [*e.tgt, EOS_ID]
        assert (batch.tgt_in[row][~tm] == PAD_ID).all() and (batch.tgt_out[row][~tm] == PAD_ID).all()
        assert batch.context is not None and batch.context[row].tolist() == context[e.index].tolist()
    src, src_mask = collate_source([e.src for e in examples])
    assert torch.equal(src, batch.src) and torch.equal(src_mask, batch.src_mask)


short_text = st.sampled_from(["a", "한", "1 2", "ab cd", "Éé-", "a b c d", "", " ", "\t", "\x85"])


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(st.tuples(*[st.one_of(short_text, covered_text, any_text)] * 2), max_size=10),
    max_src=st.integers(0, 12),
    max_tgt=st.integers(0, 12),
    min_tokens=st.integers(0, 3),
)
def test_encode_pairs_keeps_order_and_accounts_for_every_pair(
    tokenizers: dict[str, SpmTokenizer],
    pairs: list[tuple[str, str]],
    max_src: int,
    max_tgt: int,
    min_tokens: int,
) -> None:
    tok = tokenizers["bpe"]
    text = ParallelText(src=[s for s, _ in pairs], tgt=[t for _, t in pairs], name="p")
    src_ids = [tok.encode(s) for s in text.src]
    tgt_ids = [tok.encode(t) for t in text.tgt]
    limit_src = max_src if max_src > 0 else None
    limit_tgt = max(1, max_tgt - 1) if max_tgt > 0 else None  # EOS counts; 1 acts as 2

    # drop=False (validation/test sets): every pair, in order, truncated
    kept, stats = encode_pairs(text, TokenizerPair(tok), max_src, max_tgt, min_tokens, drop=False)
    assert [e.index for e in kept] == list(range(len(pairs)))
    assert [e.src for e in kept] == [s[:limit_src] for s in src_ids]
    assert [e.tgt for e in kept] == [t[:limit_tgt] for t in tgt_ids]
    assert stats.kept == stats.total == len(pairs) and stats.dropped == 0

    # drop=True (training): exactly the pairs that pass the filters, in order, unchanged
    kept, stats = encode_pairs(text, TokenizerPair(tok), max_src, max_tgt, min_tokens, drop=True)

    def passes(i: int) -> bool:
        s, t = src_ids[i], tgt_ids[i]
        return (
            bool(s)
            and bool(t)
            and not text.src[i].isspace()
            and not text.tgt[i].isspace()
            and len(s) >= min_tokens
            and len(t) >= min_tokens
            and (limit_src is None or len(s) <= limit_src)
            and (limit_tgt is None or len(t) <= limit_tgt)
        )

    assert [e.index for e in kept] == [i for i in range(len(pairs)) if passes(i)]
    assert all(e.src == src_ids[e.index] and e.tgt == tgt_ids[e.index] for e in kept)
    assert stats.kept == len(kept) and stats.kept + stats.dropped == stats.total == len(pairs)


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(st.lists(st.integers(4, 99), max_size=30), max_size=40),
    batch_tokens=st.integers(1, 200),
    max_sentences=st.integers(0, 6),
)
def test_length_batches_cover_nonempty_lines_in_length_order(
    ids: list[list[int]], batch_tokens: int, max_sentences: int
) -> None:
    batches = list(length_batches(ids, batch_tokens, max_sentences))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == [i for i, seq in enumerate(ids) if seq]  # each non-empty line once
    assert [len(ids[i]) for i in flat] == sorted(len(ids[i]) for i in flat)
    for b in batches:
        assert b and (len(b) * max(len(ids[i]) for i in b) <= batch_tokens or len(b) == 1)
        assert max_sentences == 0 or len(b) <= max_sentences


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(any_text, max_size=12), max_tokens=st.integers(1, 20))
def test_encode_sources_truncates_and_warns(
    tokenizers: dict[str, SpmTokenizer], lines: list[str], max_tokens: int
) -> None:
    tok = tokenizers["bpe"]
    full = [tok.encode(line) for line in lines]
    n_long = sum(len(f) > max_tokens for f in full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = encode_sources(tok, list(lines), max_tokens)
    assert ids == [f[:max_tokens] for f in full]
    messages = [str(w.message) for w in caught]
    assert messages == (
        [f"{n_long} input line(s) longer than {max_tokens} subword tokens were truncated to the model's limit"]
        if n_long
        else []
    )


class CopyEncoder(Encoder):
    """Encodes each source id as a one-dimensional state (so the decoder can read it back)."""

    d_model = context_dim = 1

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        states = src.unsqueeze(-1).double().masked_fill(~src_mask.unsqueeze(-1), 0.0)
        return Encoded(states=states, mask=src_mask, context=states.new_zeros(src.size(0), 1))


class CopyDecoder(Decoder):
    """Outputs its own source, then EOS, with a large margin over every other token: the
    output is a function of each sentence on its own, computed exactly (no float ties).

    EOS before the end is far less likely than any other wrong token: otherwise beam search
    (which, like fairseq, stops a sentence once it has ``beam`` finished hypotheses) could
    finish ``beam`` poor early-EOS hypotheses, tied with the other wrong tokens, before the
    copy ends, and return one of them.
    """

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        return {"t": torch.zeros(encoded.mask.size(0), dtype=torch.long)}

    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        t = state["t"]  # (B,) position to copy
        src = encoded.states[..., 0].long()  # (B, S)
        lengths = encoded.mask.sum(1)
        at = src.gather(1, t.clamp(max=src.size(1) - 1).unsqueeze(1)).squeeze(1)
        ended = t >= lengths
        nxt = torch.where(ended, torch.full_like(at, EOS_ID), at)
        logits = torch.full((t.numel(), self.vocab_size), -5.0)
        logits[:, EOS_ID] = torch.where(ended, -5.0, -30.0)
        logits[torch.arange(t.numel()), nxt] = 5.0
        return logits, {"t": t + 1}

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        raise NotImplementedError("search only")


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.one_of(covered_text, any_text, st.sampled_from(["", " ", "\t"])), max_size=14),
    batch_tokens=st.integers(1, 120),
    batch_rows=st.integers(1, 12),
    beam=st.integers(1, 3),
    max_src_tokens=st.integers(1, 25),
)
def test_translate_returns_one_line_per_input_in_order(
    tokenizers: dict[str, SpmTokenizer],
    lines: list[str],
    batch_tokens: int,
    batch_rows: int,
    beam: int,
    max_src_tokens: int,
) -> None:
    tok = tokenizers["bpe"]
    model = Seq2SeqModel(CopyEncoder(), CopyDecoder(tok.vocab_size))
    translator = Translator(
        model,
        TokenizerPair(tok),
        SearchConfig(beam=beam, batch_rows=batch_rows),
        max_src_tokens=max_src_tokens,
        max_output_tokens=max_src_tokens,
    )  # room for the copy of a truncated line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation warnings (checked above)
        out = translator.translate(list(lines), batch_tokens=batch_tokens)
        nbest = translator.translate_hypotheses(list(lines), nbest=beam, batch_tokens=batch_tokens)
    # line i's output is the copy of line i (truncated); empty lines give ""
    assert out == [tok.decode(tok.encode(line)[:max_src_tokens]) for line in lines]
    assert len(nbest) == len(lines) and [h[0][0] for h in nbest] == out


@pytest.mark.parametrize(("beam", "batch_rows", "largest"), [(1, 4, 4), (2, 4, 2), (3, 4, 1), (5, 4, 1)])
def test_translate_batches_hold_at_most_batch_rows_hypotheses(
    tokenizers: dict[str, SpmTokenizer], monkeypatch: pytest.MonkeyPatch, beam: int, batch_rows: int, largest: int
) -> None:
    """A batch holds at most batch_rows // beam sentences (at least one), whatever the token budget."""
    import seq2seq.infer.translator as translator_module

    tok = tokenizers["bpe"]
    sizes: list[int] = []

    def recording_generate(model: Any, src: Tensor, *args: Any, **kwargs: Any) -> Any:
        sizes.append(src.size(0))
        return generate(model, src, *args, **kwargs)

    monkeypatch.setattr(translator_module, "generate", recording_generate)
    translator = Translator(
        Seq2SeqModel(CopyEncoder(), CopyDecoder(tok.vocab_size)),
        TokenizerPair(tok),
        SearchConfig(beam=beam, batch_rows=batch_rows, batch_tokens=10_000),
    )
    lines = [f"line {i}" for i in range(9)]
    assert translator.translate(lines) == [tok.decode(tok.encode(line)) for line in lines]
    assert sum(sizes) == 9 and max(sizes) == largest


# ============================================================================ 3. padding
#
# A sentence's result never depends on the padding or the other sentences of its batch: the
# encoder states at its real positions and its context vector match (atol 1e-5), and greedy
# and beam search give exactly the same tokens (scores within 1e-4) whether it is decoded
# alone or in a padded batch with longer and shorter sentences. Small randomly initialised
# models (eval mode, fp32), every encoder/decoder/attention kind and the context-vector forms.
#
# Float rounding differs between a batch and a single sentence (other kernel shapes), so two
# candidates whose scores tie to ~1e-7 could in principle swap. A mismatch in fp32 is only
# accepted when the same comparison in float64 (where such ties vanish) agrees exactly; a real
# padding leak (a mask bug) fails in both.

V = 40  # vocabulary of the padding tests
MODEL_CONFIGS = {
    "gru-bahdanau-final": dict(encoder="gru", decoder="gru", attention="bahdanau", pooling="final"),
    "gru-luong-mean-unidir": dict(
        encoder="gru", decoder="gru", attention="luong", pooling="mean", bidirectional=False, enc_layers=1
    ),
    "gru-none-max": dict(encoder="gru", decoder="gru", attention="none", pooling="max"),
    "transformer-multihead-mean": dict(encoder="transformer", decoder="transformer", attention="multihead"),
    "transformer-none-max-learned": dict(
        encoder="transformer", decoder="transformer", attention="none", pooling="max", positions="learned"
    ),
    "gru-enc-transformer-dec": dict(
        encoder="gru",
        decoder="transformer",
        attention="multihead",
        context_dim=12,
        share_embeddings=False,
        tie_embeddings=False,
    ),
    "transformer-enc-gru-dec": dict(encoder="transformer", decoder="gru", attention="bahdanau"),
    "transformer-gru-variational": dict(
        encoder="transformer", decoder="gru", attention="none", bottleneck="variational"
    ),
    "gru-transformer-context-target": dict(
        encoder="gru", decoder="transformer", attention="none", context_target_dim=6, context_target_blocks=2
    ),
}
_models: dict[tuple[str, torch.dtype], Seq2SeqModel] = {}


def get_model(name: str, dtype: torch.dtype = torch.float32) -> Seq2SeqModel:
    """The model ``name`` (built once, seeded; the float64 one is a copy of the float32 one)."""
    key = (name, dtype)
    if key not in _models:
        if dtype == torch.float32:
            torch.manual_seed(sorted(MODEL_CONFIGS).index(name))
            cfg = ModelConfig(
                **{
                    **dict(d_model=16, enc_layers=2, dec_layers=2, heads=2, ffn_dim=32, dropout=0.3, max_positions=64),
                    **MODEL_CONFIGS[name],
                }
            )
            _models[key] = build_model(cfg, V, V).eval()  # eval: no dropout
        else:
            _models[key] = copy.deepcopy(get_model(name)).to(dtype).eval()
    return _models[key]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


sentences_st = st.lists(st.lists(st.integers(1, V - 1), min_size=1, max_size=12), min_size=2, max_size=5)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(MODEL_CONFIGS)), sentences=sentences_st)
def test_encoder_ignores_padding(name: str, sentences: list[list[int]]) -> None:
    model = get_model(name)
    src, src_mask = collate_source(sentences)
    with torch.inference_mode():
        batch = model.encode(src, src_mask)
        for row, sent in enumerate(sentences):
            alone = model.encode(*collate_source([sent]))
            n = len(sent)
            torch.testing.assert_close(batch.states[row, :n], alone.states[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(batch.context[row], alone.context[0], atol=1e-5, rtol=0)
            assert (batch.states[row, n:] == 0).all()  # padding positions hold nothing


def _decode_each(
    model: Seq2SeqModel, sentences: list[list[int]], spec: SearchSpec
) -> tuple[list[list[Hypothesis]], list[list[Hypothesis]]]:
    """(hypotheses of each sentence decoded in the padded batch, ... decoded alone)."""
    dtype = next(model.parameters()).dtype
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):
        assert dtype in (torch.float32, torch.float64)
        in_batch = generate(model, *collate_source(sentences), spec)
        alone = [generate(model, *collate_source([s]), spec)[0] for s in sentences]
    return in_batch, alone


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(MODEL_CONFIGS)),
    sentences=sentences_st,
    beam=st.integers(1, 4),
    nbest_frac=st.floats(0, 1),
    length_penalty=st.sampled_from([0.0, 0.6, 1.0]),
    min_len=st.integers(0, 3),
    max_len_a=st.sampled_from([0.0, 0.5, 1.0, 1.5]),
    max_len_b=st.integers(0, 6),
    max_output_len=st.one_of(st.none(), st.integers(0, 8)),
)
def test_search_result_does_not_depend_on_the_batch(
    name: str,
    sentences: list[list[int]],
    beam: int,
    nbest_frac: float,
    length_penalty: float,
    min_len: int,
    max_len_a: float,
    max_len_b: int,
    max_output_len: int | None,
) -> None:
    nbest = 1 + int(nbest_frac * (beam - 1))  # 1 <= nbest <= beam; beam 1 is greedy search
    spec = SearchSpec(
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        beam=beam,
        nbest=nbest,
        length_penalty=length_penalty,
        min_len=min_len,
        max_len_a=max_len_a,
        max_len_b=max_len_b,
        max_output_len=max_output_len,
    )
    in_batch, alone = _decode_each(get_model(name), sentences, spec)
    tokens = [[h.tokens for h in hyps] for hyps in in_batch]
    if tokens != [[h.tokens for h in hyps] for hyps in alone]:
        # only a float tie may do this: float64 must then agree exactly
        event("fp32 tie resolved in float64")
        in_batch, alone = _decode_each(get_model(name, torch.float64), sentences, spec)
        tokens = [[h.tokens for h in hyps] for hyps in in_batch]
        assert tokens == [[h.tokens for h in hyps] for hyps in alone]
    for b_hyps, a_hyps, sent in zip(in_batch, alone, sentences):
        assert 1 <= len(b_hyps) <= nbest
        for b, a in zip(b_hyps, a_hyps):
            assert math.isclose(b.score, a.score, rel_tol=1e-5, abs_tol=1e-4)
            assert math.isclose(b.log_prob, a.log_prob, rel_tol=1e-5, abs_tol=1e-4)
            limit = max_len_a * len(sent) + max_len_b
            assert len(b.tokens) <= max(0, int(limit if max_output_len is None else min(limit, max_output_len)))
            assert BOS_ID not in b.tokens and EOS_ID not in b.tokens


# ============================================================================ 4. noise
#
# Noise corrupts the encoder's input only. add_noise never mutates its input and returns what
# it promises: drop -> a subsequence with at least one token; mask -> the same length, every
# token either kept or mask_id; local shuffle -> a permutation moving no token more than
# ``distance`` places. In the trainer, an autoencoder example's target is the clean sentence.

token_lists = st.lists(st.integers(4, 10_000), max_size=40)
rate = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 60),
    seed=st.integers(0, 2**32 - 1),
    drop=rate,
    mask=rate,
    shuffle=st.sampled_from([0.0, 0.5, 1.0]),
    distance=st.integers(0, 4),
    as_tuple=st.booleans(),
)
def test_add_noise_contract(
    n: int, seed: int, drop: float, mask: float, shuffle: float, distance: int, as_tuple: bool
) -> None:
    ids = list(range(4, 4 + n))  # distinct tokens: each output token names its position
    given_ids = tuple(ids) if as_tuple else list(ids)
    out = add_noise(given_ids, np.random.default_rng(seed), drop, mask, shuffle, distance, UNK_ID)
    assert list(given_ids) == ids  # input untouched
    assert out == add_noise(ids, np.random.default_rng(seed), drop, mask, shuffle, distance, UNK_ID)
    if not ids:
        assert out == []
        return
    assert 1 <= len(out) <= len(ids)  # dropping keeps at least one token
    if not drop:
        assert len(out) == len(ids)
    if not mask:
        assert UNK_ID not in out
    if mask == 1.0:
        assert out == [UNK_ID] * len(out)
    if drop == 1.0:
        assert len(out) == 1
    pos = {t: i for i, t in enumerate(ids)}
    kept = [t for t in out if t != UNK_ID]
    assert all(t in pos for t in kept)  # only input tokens (once each) or the mask id
    assert len(set(kept)) == len(kept)
    # (local shuffle, then drop, then mask): tokens may only swap when they started at most
    # `distance` apart; without shuffling the survivors keep their order
    limit = distance if shuffle else 0
    for a, b in itertools.combinations(kept, 2):  # a is before b in the output
        assert pos[a] - pos[b] <= limit
    if not drop:  # every output position holds its own token, or one from <= distance away
        for i, t in enumerate(out):
            assert t == UNK_ID or abs(pos[t] - i) <= limit


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(0, 50), max_size=40), seed=st.integers(0, 2**32 - 1), distance=st.integers(0, 8))
def test_local_shuffle_moves_no_token_more_than_distance(ids: list[int], seed: int, distance: int) -> None:
    before = list(ids)
    perm = local_shuffle(list(range(len(ids))), distance, np.random.default_rng(seed))
    assert sorted(perm) == list(range(len(ids)))
    assert all(abs(src - dst) <= distance for dst, src in enumerate(perm))
    out = local_shuffle(ids, distance, np.random.default_rng(seed))
    assert ids == before and out == [ids[i] for i in perm]  # same permutation for any tokens


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=10), min_size=1, max_size=5),
    p=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_word_dropout_only_writes_unk_outside_kept_ids(rows: list[list[int]], p: float, seed: int) -> None:
    width = max(len(r) for r in rows)
    tgt_in = torch.tensor([[BOS_ID, *r] + [PAD_ID] * (width - len(r)) for r in rows])  # (B, 1 + T)
    before = tgt_in.clone()
    torch.manual_seed(seed)
    out = word_dropout(tgt_in, p, UNK_ID)
    assert torch.equal(tgt_in, before) and out.shape == tgt_in.shape
    changed = out.ne(tgt_in)
    assert (out[changed] == UNK_ID).all()
    keep = tgt_in.eq(PAD_ID) | tgt_in.eq(BOS_ID)
    assert not changed[keep].any()  # padding and BOS are never replaced
    if p == 1.0:
        assert (out[~keep] == UNK_ID).all()
    if p == 0.0:
        assert out is tgt_in


@pytest.fixture(scope="module")
def objectives() -> dict[str, Objective]:
    """The objectives of an autoencoder with noise and of translation."""
    auto = Config(task="autoencoder")
    auto.train.device = "cpu"
    auto.autoencoder.drop, auto.autoencoder.mask, auto.autoencoder.shuffle = 0.3, 0.3, 0.5
    translation = Config(task="translation")
    translation.train.device = "cpu"
    translation.autoencoder.drop = 0.5  # ignored outside the autoencoder task
    return {"autoencoder": choose_objective(auto), "translation": choose_objective(translation)}


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(token_lists, st.booleans()), min_size=1, max_size=6),
    epoch=st.integers(0, 50),
    batch_number=st.integers(0, 1000),
)
def test_trainer_noise_leaves_the_target_clean(
    objectives: dict[str, Objective], pairs: list[tuple[list[int], bool]], epoch: int, batch_number: int
) -> None:
    # as in an autoencoder the target is the sentence itself; `shared`: the very same list
    examples = [Example(i, ids, ids if shared else list(ids)) for i, (ids, shared) in enumerate(pairs)]
    clean = copy.deepcopy(examples)
    noised = objectives["autoencoder"].noise(examples, epoch, batch_number)
    assert examples == clean  # the batch's examples are not modified
    assert [e.index for e in noised] == [e.index for e in clean]
    assert [e.tgt for e in noised] == [e.tgt for e in clean]  # clean targets
    for e, c in zip(noised, clean):
        assert len(e.src) >= 1 if c.src else e.src == []
        assert all(t == UNK_ID or t in c.src for t in e.src)
    again = objectives["autoencoder"].noise(copy.deepcopy(clean), epoch, batch_number)
    assert [e.src for e in again] == [e.src for e in noised]  # a function of (seed, epoch, batch)
    assert objectives["translation"].noise(examples, epoch, batch_number) is examples
