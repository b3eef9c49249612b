"""Greedy and beam search: exactness, batch independence and length constraints.

Most tests use small self-contained models that honour the encoder/decoder contract, so they
don't depend on the real architectures; the real models are tested too when they build.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from seq2seq.config import SearchConfig
from seq2seq.infer.search import Hypothesis, SearchSpec, beam_search, generate, greedy_search
from seq2seq.models.types import Decoder, Encoded, Encoder

PAD, UNK, BOS, EOS = 0, 1, 2, 3
A, B, C = 4, 5, 6  # tokens of the hand-built decoders


# --------------------------------------------------------------------------- toy models


class ToyEncoder(Encoder):
    def __init__(self, vocab: int, d: int) -> None:
        super().__init__()
        self.d_model = self.context_dim = d
        self.emb = nn.Embedding(vocab, d, padding_idx=PAD)
        self.proj = nn.Linear(d, d)

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        states = torch.tanh(self.proj(self.emb(src)))  # (B, S, d)
        m = src_mask.unsqueeze(2).to(states.dtype)
        context = (states * m).sum(1) / m.sum(1).clamp(min=1)  # (B, d) masked mean
        return Encoded(states=states, mask=src_mask, context=context)


class ToyDecoder(Decoder):
    """Embedding + GRUCell with dot attention; keys live in ``state["static"]``.

    EOS gets ``eos_bias + eos_slope * (t - src_len)`` added to its logit at step ``t``, so outputs
    end at varied lengths around the source length, like a trained model's.
    """

    def __init__(self, vocab: int, d: int, temperature: float, eos_bias: float, eos_slope: float) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.init = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.cell = nn.GRUCell(2 * d, d)
        self.out = nn.Linear(2 * d, vocab)
        self.temperature = temperature
        self.eos_bias = eos_bias
        self.eos_slope = eos_slope

    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        n = encoded.mask.size(0)
        return {
            "h": torch.tanh(self.init(encoded.context)),
            "t": torch.zeros(n, dtype=encoded.states.dtype),
            "static": {"keys": self.key(encoded.states)},
        }

    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        keys = state["static"]["keys"]  # (B, S, d)
        att = (keys @ state["h"].unsqueeze(2)).squeeze(2)  # (B, S)
        att = att.masked_fill(~encoded.mask, -math.inf).softmax(dim=1)
        ctx = (att.unsqueeze(1) @ encoded.states).squeeze(1)  # (B, d)
        h = self.cell(torch.cat([self.emb(tokens), ctx], dim=1), state["h"])
        logits = self.out(torch.cat([h, ctx], dim=1)) * self.temperature
        src_len = encoded.mask.sum(1).to(logits.dtype)
        logits[:, EOS] += self.eos_bias + self.eos_slope * (state["t"] - src_len)
        return logits, {"h": h, "t": state["t"] + 1, "static": state["static"]}

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        state = self.init_state(encoded)
        out = []
        for t in range(tgt_in.size(1)):
            logits, state = self.step(tgt_in[:, t], encoded, state)
            out.append(logits)
        return torch.stack(out, dim=1)


class ToyModel(nn.Module):
    def __init__(
        self,
        vocab: int = 24,
        d: int = 16,
        temperature: float = 4.0,
        eos_bias: float = 0.0,
        eos_slope: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = ToyEncoder(vocab, d)
        self.decoder = ToyDecoder(vocab, d, temperature, eos_bias, eos_slope)
        self.double()  # float64: batch-size-dependent rounding stays far below float32 log-probs
        self.eval()

    def encode(self, src: Tensor, src_mask: Tensor) -> Encoded:
        return self.encoder(src, src_mask)


class TableDecoder(Decoder):
    """Next-token probabilities looked up from the prefix: ``table[prefix] = {token: p}``."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab: int = 8) -> None:
        super().__init__()
        self.table = table
        self.vocab = vocab

    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        return {"prefix": torch.empty((encoded.mask.size(0), 0), dtype=torch.long)}  # BOS first

    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        prefix = torch.cat([state["prefix"], tokens.unsqueeze(1)], dim=1)  # (B, t + 1)
        logits = torch.full((tokens.size(0), self.vocab), -math.inf)
        for row, key in enumerate(prefix[:, 1:].tolist()):
            for tok, p in self.table.get(tuple(key), {EOS: 1.0}).items():
                logits[row, tok] = math.log(p)
        return logits, {"prefix": prefix}

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        raise AssertionError("search must only call step(), never the teacher-forced forward")


class TableModel(nn.Module):
    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]) -> None:
        super().__init__()
        self.decoder = TableDecoder(table)

    def encode(self, src: Tensor, src_mask: Tensor) -> Encoded:
        n, s = src.shape
        return Encoded(states=torch.zeros(n, s, 1), mask=src_mask, context=torch.zeros(n, 1))


# --------------------------------------------------------------------------- helpers


def random_sources(lengths: list[int], vocab: int = 24, seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, vocab, (n,), generator=g).tolist() for n in lengths]


def collate(seqs: list[list[int]]) -> tuple[Tensor, Tensor]:
    width = max(len(s) for s in seqs)
    src = torch.tensor([s + [PAD] * (width - len(s)) for s in seqs], dtype=torch.long)
    return src, src.ne(PAD)


def settings(**changes: Any) -> SearchSpec:
    """The default config's search settings with these tests' BOS/EOS, ``changes`` applied."""
    return SearchSpec.from_config(SearchConfig(), BOS, EOS, **changes)


def one_by_one(search, model, seqs: list[list[int]], given: SearchSpec) -> list:
    return [search(model, *collate([s]), given)[0] for s in seqs]


def rescore(model: Any, src: list[int], tokens: list[int]) -> float:
    """Summed log-probability of ``tokens + [EOS]`` by teacher forcing (decoder.forward)."""
    s, m = collate([src])
    with torch.no_grad():
        encoded = model.encode(s, m)
        tgt_in = torch.tensor([[BOS] + tokens])
        lprobs = model.decoder(tgt_in, encoded).float().log_softmax(-1)[0]  # (T, V)
        target = torch.tensor(tokens + [EOS])
        return lprobs.gather(1, target.unsqueeze(1)).sum().item()


LENGTHS = [3, 9, 1, 14, 6, 2, 11, 5]


@pytest.fixture(scope="module")
def toy() -> ToyModel:
    return ToyModel()


@pytest.fixture(scope="module")
def sources() -> list[list[int]]:
    return random_sources(LENGTHS)


# --------------------------------------------------------------------------- toy-model tests


def test_outputs_are_varied(toy: ToyModel, sources: list[list[int]]) -> None:
    """Sanity check of the fixture: some outputs end at EOS, some at their maximum length."""
    out = greedy_search(toy, *collate(sources), settings(max_len_a=1.0, max_len_b=3))
    caps = [int(1.0 * n + 3) for n in LENGTHS]
    assert any(len(o) < c for o, c in zip(out, caps))
    assert any(len(o) == c for o, c in zip(out, caps))
    assert len({tuple(o) for o in out}) > 1


def test_beam_1_equals_greedy(toy: ToyModel, sources: list[list[int]]) -> None:
    src, mask = collate(sources)
    greedy = greedy_search(toy, src, mask, settings())
    beam1 = beam_search(toy, src, mask, settings(beam=1))
    assert [h[0].tokens for h in beam1] == greedy
    gen = generate(toy, src, mask, settings(beam=1, nbest=1))
    for g, b in zip(gen, beam1):
        assert g[0].tokens == b[0].tokens
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-5)
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)


def test_greedy_batch_independent(toy: ToyModel, sources: list[list[int]]) -> None:
    batched = greedy_search(toy, *collate(sources), settings())
    assert batched == one_by_one(greedy_search, toy, sources, settings())
    # Different partners and order (and a longer padded width) change nothing either.
    others = random_sources([20, 4, 17], seed=7)
    mixed = greedy_search(toy, *collate(others + sources[::-1]), settings())[len(others) :]
    assert mixed == batched[::-1]


@pytest.mark.parametrize("beam", [2, 5])
def test_beam_batch_independent(toy: ToyModel, sources: list[list[int]], beam: int) -> None:
    kw = settings(beam=beam, nbest=beam)
    batched = beam_search(toy, *collate(sources), kw)
    single = one_by_one(beam_search, toy, sources, kw)
    others = random_sources([20, 4, 17], seed=7)
    mixed = beam_search(toy, *collate(others + sources[::-1]), kw)[len(others) :][::-1]
    for b, s, m in zip(batched, single, mixed):
        assert [h.tokens for h in b] == [h.tokens for h in s] == [h.tokens for h in m]
        assert [h.score for h in b] == pytest.approx([h.score for h in s], abs=1e-5)


def test_big_batch_matches_single(toy: ToyModel) -> None:
    seqs = random_sources([1 + (7 * i) % 19 for i in range(64)], seed=3)
    batched = beam_search(toy, *collate(seqs), settings(beam=4))
    for i in (0, 5, 17, 63):
        assert [h.tokens for h in batched[i]] == [
            h.tokens for h in beam_search(toy, *collate([seqs[i]]), settings(beam=4))[0]
        ]


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_nbest_distinct_sorted_and_scored(toy: ToyModel, sources: list[list[int]], length_penalty: float) -> None:
    out = beam_search(toy, *collate(sources), settings(beam=5, nbest=5, length_penalty=length_penalty))
    for src, hyps in zip(sources, out):
        assert len(hyps) == 5
        assert len({tuple(h.tokens) for h in hyps}) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            assert isinstance(h, Hypothesis)
            assert EOS not in h.tokens and BOS not in h.tokens
            norm = (len(h.tokens) + 1) ** length_penalty
            assert h.score == pytest.approx(h.log_prob / norm, abs=1e-6)
            # Summed log-probability agrees with teacher forcing: the state was reordered right.
            assert h.log_prob == pytest.approx(rescore(toy, src, h.tokens), abs=1e-4)


def test_beam_not_worse_than_greedy(toy: ToyModel, sources: list[list[int]]) -> None:
    src, mask = collate(sources)
    greedy = generate(toy, src, mask, settings(beam=1, nbest=1, length_penalty=0.0))
    beam = beam_search(toy, src, mask, settings(beam=8, length_penalty=0.0))
    # Not guaranteed in general (beam search is a heuristic), but holds for this model.
    assert sum(b[0].score for b in beam) >= sum(g[0].score for g in greedy) - 1e-6


@pytest.mark.parametrize("beam", [1, 4])
def test_max_length_per_sentence(sources: list[list[int]], beam: int) -> None:
    never_eos = ToyModel(eos_bias=-1e4)
    src, mask = collate(sources)
    out = generate(never_eos, src, mask, settings(beam=beam, nbest=1, max_len_a=0.5, max_len_b=2))
    assert [len(h[0].tokens) for h in out] == [int(0.5 * n + 2) for n in LENGTHS]
    # The forced EOS is scored like any other token.
    for s, h in zip(sources, out):
        expected = rescore(never_eos, s, h[0].tokens)
        assert h[0].log_prob == pytest.approx(expected, rel=1e-6, abs=1e-3)
    # With a model that does stop, nothing exceeds its own cap either.
    toy = ToyModel()
    for h, n in zip(generate(toy, src, mask, settings(beam=beam, nbest=1, max_len_b=1)), LENGTHS):
        assert len(h[0].tokens) <= int(1.5 * n + 1)


@pytest.mark.parametrize("beam", [1, 3])
def test_min_len(sources: list[list[int]], beam: int) -> None:
    eager = ToyModel(eos_bias=1e4)  # EOS as soon as it is allowed
    src, mask = collate(sources)
    assert all(len(h[0].tokens) == 0 for h in generate(eager, src, mask, settings(beam=beam, nbest=1)))
    out = generate(eager, src, mask, settings(beam=beam, nbest=1, min_len=4, max_len_a=1.0, max_len_b=2))
    # min_len 4, but the maximum length (src_len + 2) wins where it is shorter.
    assert [len(h[0].tokens) for h in out] == [min(4, n + 2) for n in LENGTHS]


# --------------------------------------------------------------------------- hand-built cases


def test_beam_finds_what_greedy_misses() -> None:
    # P(A) = .6, P(B) = .4; after A: EOS .4, A .3, C .3; after B: EOS .9, A .05, C .05.
    # Greedy: A EOS (p = .24). Beam 2 keeps both prefixes and finds B EOS (p = .36).
    table = {
        (): {A: 0.6, B: 0.4},
        (A,): {EOS: 0.4, A: 0.3, C: 0.3},
        (B,): {EOS: 0.9, A: 0.05, C: 0.05},
    }
    model = TableModel(table)
    src, mask = collate([[A, B, C]])
    assert greedy_search(model, src, mask, settings()) == [[A]]
    best = beam_search(model, src, mask, settings(beam=2, nbest=2, length_penalty=0.0))[0]
    assert [h.tokens for h in best] == [[B], [A]]
    assert best[0].log_prob == pytest.approx(math.log(0.36), abs=1e-6)
    assert best[1].log_prob == pytest.approx(math.log(0.24), abs=1e-6)
    assert best[0].score == best[0].log_prob
    # Length-normalised scores: both have length 2 (EOS counted).
    best = beam_search(model, src, mask, settings(beam=2, nbest=2, length_penalty=1.0))[0]
    assert best[0].score == pytest.approx(math.log(0.36) / 2, abs=1e-6)
    # Greedy hypotheses get their log-probability too.
    (g,) = generate(model, src, mask, settings(beam=1, nbest=1))[0]
    assert g.tokens == [A] and g.log_prob == pytest.approx(math.log(0.24), abs=1e-6)


def test_length_penalty_changes_ranking() -> None:
    # [] has p = .4 (length 1); [A] has p = .6 * .6 = .36 (length 2).
    # No normalisation: log .4 > log .36. Per token (alpha = 1): log(.36) / 2 > log .4.
    table = {(): {EOS: 0.4, A: 0.6}, (A,): {EOS: 0.6, A: 0.4}}
    model = TableModel(table)
    src, mask = collate([[A]])
    raw = beam_search(model, src, mask, settings(beam=2, nbest=2, length_penalty=0.0))[0]
    assert [h.tokens for h in raw] == [[], [A]]
    assert raw[0].score == pytest.approx(math.log(0.4), abs=1e-6)
    normalised = beam_search(model, src, mask, settings(beam=2, nbest=2, length_penalty=1.0))[0]
    assert [h.tokens for h in normalised] == [[A], []]
    assert normalised[0].score == pytest.approx(math.log(0.36) / 2, abs=1e-6)


def test_eos_outside_top_beam_is_dropped() -> None:
    # fairseq's rule: only EOS candidates among the best `beam` finish. Beam 1: A (.5) beats
    # EOS (.3), so [] never finishes; then A EOS is taken.
    table = {(): {A: 0.5, EOS: 0.3, B: 0.2}, (A,): {EOS: 1.0}}
    out = beam_search(TableModel(table), *collate([[A]]), settings(beam=1))[0]
    assert [h.tokens for h in out] == [[A]]


def test_step_0_runs_one_row_per_sentence() -> None:
    """Before the first step every beam of a sentence is the same BOS hypothesis: the first step
    runs one row per sentence, the later ones `beam` rows."""
    table = {(): {A: 0.5, B: 0.3, C: 0.2}, (A,): {A: 0.6, EOS: 0.4}, (B,): {EOS: 1.0}, (C,): {EOS: 1.0}}
    model = TableModel(table)
    rows: list[int] = []
    step = model.decoder.step
    model.decoder.step = lambda tokens, encoded, state: (rows.append(tokens.size(0)), step(tokens, encoded, state))[1]
    out = beam_search(model, *collate([[A], [B, C]]), settings(beam=3, nbest=3, length_penalty=0.0, max_len_b=2))
    assert rows[0] == 2 and set(rows[1:]) == {6}
    assert [h.tokens for h in out[0][:2]] == [[B], [A, A]]  # .3, then .5 * .6 * 1 = .3 finished later
    assert [h.log_prob for h in out[0]] == pytest.approx([math.log(0.3), math.log(0.3), math.log(0.2)])


def test_beam_wider_than_the_vocabulary() -> None:
    """Fewer tokens than beams: the beams with no candidate start dead and never finish."""
    model = TableModel({(): {A: 0.7, EOS: 0.3}, (A,): {EOS: 1.0}})
    model.decoder.vocab = 5  # PAD, BOS, EOS, A, B: 3 possible outputs for 6 beams
    out = beam_search(model, *collate([[A]]), settings(beam=6, nbest=6, length_penalty=0.0))[0]
    assert [h.tokens for h in out] == [[A], []]
    assert [h.log_prob for h in out] == pytest.approx([math.log(0.7), math.log(0.3)])


def test_argument_checks(toy: ToyModel, sources: list[list[int]]) -> None:
    src, mask = collate(sources)
    with pytest.raises(ValueError, match="nbest must be between 1 and the beam size"):
        beam_search(toy, src, mask, settings(beam=2, nbest=3))
    with pytest.raises(ValueError, match="beam must be >= 1"):
        beam_search(toy, src, mask, settings(beam=0))
    with pytest.raises(dataclasses.FrozenInstanceError):  # the settings are fixed for a search
        settings().beam = 3  # type: ignore[misc]


def test_spec_from_config() -> None:
    """One spec carries a config's search settings (batching aside) and the special ids."""
    cfg = SearchConfig(beam=4, length_penalty=0.6, max_len_a=2.0, max_len_b=7, min_len=1, batch_rows=8)
    assert SearchSpec.from_config(cfg, BOS, EOS, nbest=2, max_output_len=30) == SearchSpec(
        bos_id=BOS,
        eos_id=EOS,
        beam=4,
        length_penalty=0.6,
        max_len_a=2.0,
        max_len_b=7,
        min_len=1,
        nbest=2,
        max_output_len=30,
    )


# --------------------------------------------------------------------------- prefixes


PREFIXES = [[A, B], [], [C], [A, A, A, B, C], [], [B], [C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C], [A]]


@pytest.mark.parametrize("beam", [1, 4])
def test_prefix_is_forced_then_search_goes_on(toy: ToyModel, sources: list[list[int]], beam: int) -> None:
    """Every hypothesis starts with its sentence's prefix, scored with the model's own log-probabilities;
    a prefix longer than the maximum length raises it; the search is batch-independent."""
    kw = settings(beam=beam, nbest=beam, max_len_a=1.0, max_len_b=3)
    out = generate(toy, *collate(sources), kw, prefixes=PREFIXES)
    for src, prefix, hyps in zip(sources, PREFIXES, out):
        assert len(hyps) == (1 if len(prefix) >= len(src) + 3 else beam)  # a prefix that fills it: itself alone
        for h in hyps:
            assert h.tokens[: len(prefix)] == prefix
            assert len(h.tokens) <= max(len(src) + 3, len(prefix))
            assert h.log_prob == pytest.approx(rescore(toy, src, h.tokens), abs=1e-4)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
    assert len(out[6][0].tokens) == len(PREFIXES[6])  # longer than src_len + 3: ends right after it
    single = [generate(toy, *collate([s]), kw, prefixes=[p])[0] for s, p in zip(sources, PREFIXES)]
    assert [[h.tokens for h in b] for b in out] == [[h.tokens for h in s] for s in single]


@pytest.mark.parametrize("beam", [1, 3, 5])
def test_a_prefix_the_output_starts_with_changes_nothing(toy: ToyModel, sources: list[list[int]], beam: int) -> None:
    """Forcing the first tokens of the unforced best output gives that output, with its score. Greedy
    search guarantees it; for beam search it is the usual case, not a guarantee (its stopping rule
    sees other hypotheses than the unforced search saw), and it holds for this model."""
    kw = settings(beam=beam, nbest=1)
    free = generate(toy, *collate(sources), kw)
    for cut in (1, 3):
        prefixes = [h[0].tokens[: min(cut, len(h[0].tokens) - 1)] for h in free]  # a start, not the whole
        forced = generate(toy, *collate(sources), kw, prefixes=prefixes)
        assert [h[0].tokens for h in forced] == [h[0].tokens for h in free]
        assert [h[0].score for h in forced] == pytest.approx([h[0].score for h in free], abs=1e-6)


def test_prefix_limits_and_checks(toy: ToyModel, sources: list[list[int]]) -> None:
    src, mask = collate(sources[:2])
    capped = generate(toy, src, mask, settings(beam=2, max_output_len=3), prefixes=[[A, B, C, A, B], [A]])
    assert capped[0][0].tokens == [A, B, C] and len(capped[1][0].tokens) <= 3
    assert generate(toy, src, mask, settings(beam=2), prefixes=[[], []]) == generate(toy, src, mask, settings(beam=2))
    for bad in ([EOS], [BOS], [PAD], [-1]):
        with pytest.raises(ValueError, match="a prefix cannot hold"):
            generate(toy, src, mask, settings(beam=1, nbest=1), prefixes=[bad, []])
    with pytest.raises(ValueError, match="1 prefixes for a batch of 2"):
        generate(toy, src, mask, settings(), prefixes=[[A]])


# --------------------------------------------------------------------------- real models


def _real_model_specs() -> list[Any]:
    try:
        from seq2seq.models import build_model  # noqa: F401
    except Exception:  # the model package is not there (yet)
        return []
    return [
        pytest.param(("transformer", "transformer", "auto"), id="transformer-transformer"),
        pytest.param(("gru", "gru", "bahdanau"), id="gru-gru-bahdanau"),
        pytest.param(("gru", "gru", "none"), id="gru-gru-none"),
        pytest.param(("transformer", "gru", "luong"), id="transformer-gru-luong"),
        pytest.param(("gru", "transformer", "auto"), id="gru-transformer"),
    ]


REAL = _real_model_specs()


@pytest.mark.skipif(not REAL, reason="seq2seq.models.build_model is not available")
@pytest.mark.parametrize("vocab", [40, 192])  # 192: beam search's two-stage top-k (64-entry chunks)
@pytest.mark.parametrize("spec", REAL or [None])
def test_real_models(spec: tuple[str, str, str], vocab: int) -> None:
    from seq2seq.config import ModelConfig
    from seq2seq.models import build_model

    enc, dec, attention = spec
    cfg = ModelConfig(
        encoder=enc,
        decoder=dec,
        attention=attention,
        d_model=32,
        enc_layers=2,
        dec_layers=2,
        heads=4,
        ffn_dim=64,
        dropout=0.0,
    )
    torch.manual_seed(0)
    model = build_model(cfg, vocab, vocab).double().eval()  # float64: see ToyModel
    lengths = [5, 12, 1, 8, 3]
    seqs = random_sources(lengths, vocab=vocab, seed=2)
    src, mask = collate(seqs)
    lengths_only = settings(max_len_a=1.0, max_len_b=4)
    greedy = greedy_search(model, src, mask, lengths_only)
    assert greedy == one_by_one(greedy_search, model, seqs, lengths_only)
    assert [h[0].tokens for h in beam_search(model, src, mask, settings(beam=1, max_len_a=1.0, max_len_b=4))] == greedy
    kw = settings(beam=3, nbest=3, max_len_a=1.0, max_len_b=4)
    batched = beam_search(model, src, mask, kw)
    single = one_by_one(beam_search, model, seqs, kw)
    assert [[h.tokens for h in b] for b in batched] == [[h.tokens for h in s] for s in single]
    for n, s, hyps in zip(lengths, seqs, batched):
        for h in hyps:
            assert len(h.tokens) <= n + 4
            assert h.log_prob == pytest.approx(rescore(model, s, h.tokens), abs=1e-4)
    # The beams of a sentence share one copy of its source memory (grouped rows); the same
    # search with the memory repeated per beam gives the same hypotheses.
    assert model.decoder.grouped_rows
    model.decoder.grouped_rows = False
    repeated = beam_search(model, src, mask, kw)
    assert [[h.tokens for h in b] for b in repeated] == [[h.tokens for h in b] for b in batched]
    for hyps_r, hyps_b in zip(repeated, batched):
        assert [h.log_prob for h in hyps_r] == pytest.approx([h.log_prob for h in hyps_b], abs=1e-9)


@pytest.mark.parametrize("vocab", [64, 256, 8000, 100])  # 100: no 64-entry chunks, one plain top-k
def test_top_candidates_is_a_top_k(vocab: int) -> None:
    """The two-stage top-k of beam search picks the same candidates as a top-k over
    (n, beam * vocab) of log-probs plus row scores, -inf rows (beams not yet live) included."""
    from seq2seq.infer.beam import _top_candidates

    g = torch.Generator().manual_seed(vocab)
    n, beam = 7, 5
    for k in (1, 2 * beam):
        lprobs = torch.randn(n * beam, vocab, generator=g).log_softmax(-1)
        lprobs[:, :3] = -math.inf  # PAD, UNK/BOS-like columns that are never outputs
        scores = torch.randn(n, beam, generator=g) * 3
        scores[0, 1:] = -math.inf  # a sentence at step 0: only its first beam is live
        scores[1] = -math.inf  # (degenerate: nothing live at all)
        expected = (lprobs + scores.view(-1, 1)).view(n, -1).topk(k, dim=1)
        values, flat = _top_candidates(lprobs.clone(), scores, k)
        assert torch.equal(values, expected.values)
        live = values.isfinite()
        picked = (lprobs + scores.view(-1, 1)).view(n, -1).gather(1, flat)
        assert torch.equal(picked[live], values[live])  # the indices point at those values
        assert all(len(set(row)) == k for row in flat.tolist()[2:])  # distinct candidates
