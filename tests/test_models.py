"""Model tests: shapes, padding, incremental decoding, causality, sharing, gradient flow."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seq2seq.config import ModelConfig
from seq2seq.models import (
    BahdanauAttention,
    Decoder,
    LuongAttention,
    MultiHeadAttention,
    Seq2SeqModel,
    TransformerEncoder,
    build_model,
)

PAD, BOS, EOS = 0, 2, 3
V = 40

COMBOS = [
    (enc, dec, att)
    for enc in ("gru", "transformer")
    for dec, atts in (
        ("gru", ("none", "bahdanau", "luong")),
        ("transformer", ("none", "multihead")),
    )
    for att in atts
]
IDS = [f"{e}-{d}-{a}" for e, d, a in COMBOS]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a busy machine OpenMP spinning makes them
    orders of magnitude slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(enc: str, dec: str, att: str, **kw) -> Seq2SeqModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        encoder=enc,
        decoder=dec,
        attention=att,
        d_model=16,
        heads=2,
        ffn_dim=32,
        enc_layers=2,
        dec_layers=2,
        max_positions=64,
        **kw,
    )
    return build_model(cfg, V, V)


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to a (B, L) id tensor and its mask."""
    n = max(len(s) for s in seqs)
    ids = torch.tensor([s + [PAD] * (n - len(s)) for s in seqs])
    return ids, ids.ne(PAD)


SRC = [[5, 6, 7, EOS], [8, 9, 10, 11, 12, 13, 14, EOS], [15, 16, 17, 18, 19, EOS]]
TGT = [[BOS, 20, 21, 22], [BOS, 23, 24, 25, 26, 27, 28], [BOS, 29, 30]]


@pytest.mark.parametrize(("enc", "dec", "att"), COMBOS, ids=IDS)
def test_shapes(enc: str, dec: str, att: str) -> None:
    model = tiny(enc, dec, att)
    src, mask = pad_batch(SRC)
    tgt, _ = pad_batch(TGT)
    encoded = model.encode(src, mask)
    assert encoded.states.shape == (3, 8, 16)
    assert encoded.context.shape == (3, 16)
    assert encoded.mask is mask
    assert model(src, mask, tgt).shape == (3, 7, V)
    logits, _ = model.decoder.step(tgt[:, 0], encoded, model.decoder.init_state(encoded))
    assert logits.shape == (3, V)


@pytest.mark.parametrize(("enc", "dec", "att"), COMBOS, ids=IDS)
def test_padding_never_leaks(enc: str, dec: str, att: str) -> None:
    """Sentence 0 gives the same states, context and logits alone and in a padded batch."""
    model = tiny(enc, dec, att).eval()
    with torch.no_grad():
        src, mask = pad_batch(SRC)
        tgt, _ = pad_batch(TGT)
        batch_enc = model.encode(src, mask)
        batch_logits = model(src, mask, tgt)
        s0, m0 = pad_batch(SRC[:1])
        t0, _ = pad_batch(TGT[:1])
        alone_enc = model.encode(s0, m0)
        alone_logits = model(s0, m0, t0)
    n, t = len(SRC[0]), len(TGT[0])
    torch.testing.assert_close(batch_enc.states[0, :n], alone_enc.states[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch_enc.context[0], alone_enc.context[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch_logits[0, :t], alone_logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("enc", "dec", "att"), COMBOS, ids=IDS)
def test_step_matches_forward(enc: str, dec: str, att: str) -> None:
    model = tiny(enc, dec, att).eval()
    src, mask = pad_batch(SRC)
    tgt, _ = pad_batch(TGT)
    with torch.no_grad():
        encoded = model.encode(src, mask)
        full = model.decoder(tgt, encoded)  # (B, T, V)
        state = model.decoder.init_state(encoded)
        for t in range(tgt.size(1)):
            logits, state = model.decoder.step(tgt[:, t], encoded, state)
            assert (logits - full[:, t]).abs().max().item() < 1e-4, f"step {t}"


def test_transformer_step_consumes_its_state() -> None:
    """A Transformer step releases the caches of the state it is given (peak memory) and refuses
    that state a second time; a reordered copy of a state is still its own."""
    model = tiny("transformer", "transformer", "multihead").eval()
    src, mask = pad_batch(SRC)
    tgt, _ = pad_batch(TGT)
    with torch.no_grad():
        encoded = model.encode(src, mask)
        _, state = model.decoder.step(tgt[:, 0], encoded, model.decoder.init_state(encoded))
        same = torch.arange(src.size(0))
        copy = model.decoder.reorder_state(state, same)
        first, _ = model.decoder.step(tgt[:, 1], encoded, copy)
        assert all(k is None for k in copy["k"] + copy["v"])
        with pytest.raises(RuntimeError, match="stepped already"):
            model.decoder.step(tgt[:, 1], encoded, copy)
        again, _ = model.decoder.step(tgt[:, 1], encoded, state)  # the original is untouched
        assert torch.equal(first, again)


@pytest.mark.parametrize(("enc", "dec", "att"), COMBOS, ids=IDS)
def test_reorder_state(enc: str, dec: str, att: str) -> None:
    """Reordering the state (and the encoding) mid-decoding equals decoding the reordered batch."""
    model = tiny(enc, dec, att).eval()
    src, mask = pad_batch(SRC)
    tgt, _ = pad_batch(TGT)
    perm = torch.tensor([2, 0, 0])  # reorder and repeat, as beam search does
    with torch.no_grad():
        encoded = model.encode(src, mask)
        full = model.decoder(tgt[perm], encoded.select(perm))
        state = model.decoder.init_state(encoded)
        _, state = model.decoder.step(tgt[:, 0], encoded, state)
        after_one = state
        state = Decoder.reorder_state(state, perm, static=True)
        encoded = encoded.select(perm)
        logits, _ = model.decoder.step(tgt[perm, 1], encoded, state)
        assert (logits - full[:, 1]).abs().max().item() < 1e-4
        # The decoder's own reorder (a Transformer defers the cache copy to the next step), twice
        # in a row, then two steps: the same as decoding the reordered batch.
        perm2 = torch.tensor([1, 1, 0])
        state = model.decoder.reorder_state(after_one, perm, static=True)
        state = model.decoder.reorder_state(state, perm2, static=True)
        both = perm[perm2]
        logits, state = model.decoder.step(tgt[both, 1], encoded.select(perm2), state)
        assert (logits - full[perm2, 1]).abs().max().item() < 1e-4
        logits, _ = model.decoder.step(tgt[both, 2], encoded.select(perm2), state)
        assert (logits - full[perm2, 2]).abs().max().item() < 1e-4


@pytest.mark.parametrize("att", ["none", "multihead"])
def test_transformer_decoder_is_causal(att: str) -> None:
    model = tiny("transformer", "transformer", att).eval()
    src, mask = pad_batch(SRC)
    tgt, _ = pad_batch(TGT)
    changed = tgt.clone()
    changed[:, 4] = 33
    with torch.no_grad():
        a = model(src, mask, tgt)
        b = model(src, mask, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_additive_and_multiplicative_weights_zero_on_padding() -> None:
    torch.manual_seed(0)
    values = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    for attn in (BahdanauAttention(4, 6, 8), LuongAttention(4, 6)):
        keys = attn.project_keys(values)
        for t in (1, 3):  # incremental and all steps at once
            context, weights = attn(torch.randn(2, t, 4), keys, values, mask)
            assert context.shape == (2, t, 6) and weights.shape == (2, t, 5)
            assert torch.all(weights[0, :, 3:] == 0)
            assert torch.all(weights[1] > 0)
            torch.testing.assert_close(weights.sum(-1), torch.ones(2, t))


def test_multihead_ignores_padded_keys() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[True, True, True, False, False]])
    memory = torch.randn(1, 5, 8)
    garbage = memory.clone()
    garbage[:, 3:] = 1e3 * torch.randn(1, 2, 8)
    query = torch.randn(1, 2, 8)
    cross = MultiHeadAttention(8, 2, cross=True).eval()
    a = cross(query, mask=mask, kv=cross.project_kv(memory))
    b = cross(query, mask=mask, kv=cross.project_kv(garbage))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # causal + padding together: position t sees real keys <= t only
    self_attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 5, 8)
    y = self_attn(x, mask=mask, causal=True)
    y3 = self_attn(x[:, :3], causal=True)
    torch.testing.assert_close(y[:, :3], y3, atol=1e-6, rtol=0)


def test_encoder_gives_a_source_the_same_states_alone_as_padded_in_a_batch() -> None:
    """Self-attention over a whole sequence always takes the fused kernel (only decoding steps take
    the few-query matmuls), so a short source padded to 16 positions alone and to 48 beside a long
    one is computed the same way: its states are equal to the bit (what makes decoding with
    ``--quantize int8-rows`` batch-independent, docs/serving.md)."""
    model = tiny("transformer", "transformer", "multihead").eval()
    short, long_ = torch.randint(4, V, (5,)), torch.randint(4, V, (40,))
    alone = torch.zeros(1, 16, dtype=torch.long)
    alone[0, :5] = short
    batch = torch.zeros(2, 48, dtype=torch.long)
    batch[0, :5], batch[1, :40] = short, long_
    with torch.inference_mode():
        a = model.encode(alone, alone.ne(0)).states[0, :5]
        b = model.encode(batch, batch.ne(0)).states[0, :5]
    assert torch.equal(a, b)


@pytest.mark.parametrize("queries", [1, 3])
def test_cross_attention_is_the_same_over_padded_keys(queries: int) -> None:
    """A decoding step's cross-attention gives a row the same output to the bit over its source
    padded to 16 keys alone and to 48 beside a longer source: for one query it sums per key rather
    than through a matrix-vector kernel, which for 1 x 16 x 16 sums another way (4 heads of 16)."""
    torch.manual_seed(0)
    attn = MultiHeadAttention(64, 4, cross=True).eval()
    attn.out_proj = torch.nn.Identity()  # (fp32 linears round by their row count; int8-rows ones do not)
    q, k, v = torch.randn(2, 4, queries, 16), torch.randn(2, 4, 48, 16), torch.randn(2, 4, 48, 16)
    mask = torch.zeros(2, 48, dtype=torch.bool)
    mask[0, :7], mask[1, :40] = True, True
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.inference_mode():
            alone = attn._attend(q[:1], k[:1, :, :16], v[:1, :, :16], mask[:1, :16], False, True)
            batched = attn._attend(q, k, v, mask, False, True)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(alone[0], batched[0])


@pytest.mark.parametrize("queries", [1, 3, 16, 17])
def test_multihead_few_query_path_matches_fused_kernel(queries: int) -> None:
    """In CPU inference, decoding's attention (cross-attention, and self-attention's ``step``) with
    up to FEW_QUERIES queries per row takes two matmuls instead of the fused kernel; both give the
    same attention (train mode with no dropout always takes the kernel, and so does self-attention
    over a whole sequence). Grouped rows (g query rows per source, beam search) equal the memory
    repeated g times."""
    torch.manual_seed(0)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    memory, x = torch.randn(2, 7, 8), torch.randn(6, queries, 8)  # 3 query rows per source
    for cross in (True, False):
        attn = MultiHeadAttention(8, 2, dropout=0.0, cross=cross)
        if cross:
            kv = attn.project_kv(memory)
            repeated = tuple(t.repeat_interleave(3, dim=0) for t in kv)
            kernel = attn.train()(x, mask=mask.repeat_interleave(3, dim=0), kv=repeated)
            fast = attn.eval()(x, mask=mask, kv=kv)
        else:
            self_mask = torch.ones(6, queries, dtype=torch.bool)
            self_mask[1::2, 1:] = False  # every other row: one real key
            kernel = attn.train()(x, mask=self_mask)
            fast = attn.eval()(x, mask=self_mask)
        torch.testing.assert_close(fast, kernel, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 5, 15, 16, 17, 40])
def test_softmax_matches_torch_softmax(length: int) -> None:
    """The attention softmax (separate exp and sum for rows under 16 elements, in inference) gives
    torch's values, with masked (-inf) keys exactly 0, and keeps autograd where it is needed."""
    from seq2seq.models.attention import softmax

    torch.manual_seed(0)
    scores = torch.randn(3, 4, 2, length) * 10
    scores[0, :, :, 1:] = float("-inf")  # one real key
    with torch.no_grad():
        got = softmax(scores)
    torch.testing.assert_close(got, scores.softmax(dim=-1), atol=1e-6, rtol=1e-6)
    assert (got[0, :, :, 1:] == 0).all()
    leaf = torch.randn(2, length, requires_grad=True)
    softmax(leaf)[:, 0].sum().backward()
    expected = torch.autograd.grad(leaf.softmax(dim=-1)[:, 0].sum(), leaf)[0]
    torch.testing.assert_close(leaf.grad, expected)


def test_shared_and_tied_embeddings() -> None:
    for enc, dec in (("transformer", "transformer"), ("gru", "gru"), ("gru", "transformer")):
        model = tiny(enc, dec, "auto")
        emb = model.encoder.embedding
        assert emb.weight is model.decoder.embedding.weight
        assert model.decoder.output.weight is emb.weight
        assert torch.all(emb.weight[PAD] == 0)
    untied = tiny("transformer", "gru", "auto", share_embeddings=False, tie_embeddings=False)
    assert untied.encoder.embedding.weight is not untied.decoder.embedding.weight
    assert untied.decoder.output.weight is not untied.decoder.embedding.weight
    with pytest.raises(ValueError, match="joint"):
        build_model(ModelConfig(d_model=16, heads=2), 40, 41)
    separate = build_model(ModelConfig(d_model=16, heads=2, share_embeddings=False), 40, 41)
    assert separate(*pad_batch(SRC), pad_batch(TGT)[0]).shape[-1] == 41


def test_auto_resolution() -> None:
    m = tiny("gru", "gru", "auto", context_dim=0, pooling="auto")
    assert m.decoder.attention_type == "bahdanau" and m.encoder.pooling == "final"
    assert m.encoder.context_dim == 16
    m = tiny("transformer", "transformer", "auto", context_dim=8, pooling="auto")
    assert m.decoder.attention_type == "multihead" and m.encoder.pooling == "mean"
    assert m.encode(*pad_batch(SRC)).context.shape == (3, 8)


def test_too_long_input_raises() -> None:
    enc = TransformerEncoder(V, 16, 1, 2, 32, max_positions=5)
    ids = torch.full((1, 6), 5)
    with pytest.raises(ValueError, match="max_positions"):
        enc(ids, ids.ne(PAD))


@pytest.mark.parametrize(("enc", "dec", "att"), COMBOS, ids=IDS)
def test_overfits_and_gradients_reach_every_parameter(enc: str, dec: str, att: str) -> None:
    model = tiny(enc, dec, att, dropout=0.0).train()
    src, mask = pad_batch(SRC[:2])
    tgt, _ = pad_batch([t[1:] + [EOS] for t in TGT[:2]])
    tgt_in, _ = pad_batch(TGT[:2])
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for i in range(40):
        opt.zero_grad()
        logits = model(src, mask, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1), ignore_index=PAD)
        loss.backward()
        if i == 0:
            # Documented exceptions: a Transformer decoder with cross-attention does not read the
            # context vector; a decoder without attention does not read a GRU encoder's states,
            # so with final-state pooling its state projection is unused.
            allowed = set()
            if att == "multihead":
                allowed |= {"encoder.context_proj.weight", "encoder.context_proj.bias"}
            if enc == "gru" and att == "none":
                allowed |= {"encoder.out_proj.weight", "encoder.out_proj.bias"}
            missing = {n for n, p in model.named_parameters() if p.grad is None}
            assert missing == allowed
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
