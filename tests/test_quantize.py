"""int8 inference: the oneDNN int8 linear, and quantize_int8's choice of layers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.infer import quantize
from seq2seq.infer.quantize import Int8Linear, has_int_mm, has_onednn_int8, quantize_int8
from seq2seq.models import build_model

needs_int8 = pytest.mark.skipif(not has_onednn_int8(), reason="no oneDNN int8 linear in this PyTorch build")


@needs_int8
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_matches_the_fp32_linear(relu: bool, bias: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=bias)
    with torch.no_grad():
        linear.weight.mul_(torch.linspace(0.1, 3.0, 48).unsqueeze(1))  # output features of unlike ranges
    x = torch.randn(5, 7, 64)
    layer = Int8Linear(linear.weight, linear.bias, relu=relu)
    with torch.inference_mode():
        expected = linear(x)
        if relu:
            expected = expected.relu()
        got = layer(x)
        assert got.shape == (5, 7, 48) and got.dtype == torch.float32
        # 8-bit activations and weights: within ~1% of the output's range, per element
        assert (got - expected).abs().max() <= 0.01 * expected.abs().max()
        if relu:
            assert (got >= 0).all()
        rows = layer(x[:, 2])  # 2-D input
        assert rows.shape == (5, 48) and (rows - expected[:, 2]).abs().max() <= 0.01 * expected.abs().max()
        assert layer(x[:0]).shape == (0, 7, 48)  # no rows: no quantization range to take
        with pytest.raises(ValueError, match="non-finite"):
            layer(torch.full((2, 64), float("nan")))


@needs_int8
def test_int8_linear_quantizes_the_rows_of_a_call_together() -> None:
    """One activation scale per call (docs/serving.md, "Batching across requests"): a row decoded
    beside a row of a much wider range gets a coarser scale, so its output changes, within the
    error that scale allows."""
    torch.manual_seed(2)
    linear = nn.Linear(64, 32)
    layer = Int8Linear(linear.weight, linear.bias)
    quiet, loud = torch.randn(1, 64), 40 * torch.randn(1, 64)
    with torch.inference_mode():
        expected, wide = linear(quiet), linear(torch.cat([quiet, loud]))
        alone = layer(quiet)
        beside = layer(torch.cat([quiet, loud]))[:1]
    assert not torch.equal(alone, beside)
    assert (alone - expected).abs().max() < (beside - expected).abs().max()  # the finer scale is closer
    assert (beside - expected).abs().max() <= 0.01 * wide.abs().max()  # within 1% of the call's range


@needs_int8
def test_int8_linear_is_more_accurate_than_fbgemm_dynamic_linear() -> None:
    """Per-feature weight scales and 8-bit (not 7-bit) activations: the reason to prefer it."""
    torch.manual_seed(1)
    linear = nn.Linear(256, 1024)
    x = torch.randn(50, 256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fbgemm = torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)
    with torch.inference_mode():
        expected = linear(x)
        ours = (Int8Linear(linear.weight, linear.bias)(x) - expected).abs().mean()
        theirs = (fbgemm(x) - expected).abs().mean()
    assert ours < 0.75 * theirs


@needs_int8
@pytest.mark.parametrize("int_mm", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_int8_linear_per_row_keeps_each_row_to_itself(monkeypatch, relu: bool, int_mm: bool) -> None:
    """per_row: a row's output is the same alone as beside a row of a much wider range, and rows
    of unlike ranges are each quantized to their own (closer to fp32 than one scale per call);
    on torch._int_mm and on the oneDNN op alike."""
    if int_mm and not has_int_mm():
        pytest.skip("torch._int_mm does not run on the CPU in this PyTorch build")
    monkeypatch.setattr(quantize, "has_int_mm", lambda: int_mm)
    torch.manual_seed(3)
    linear = nn.Linear(64, 48)
    x = torch.randn(6, 64) * torch.tensor([0.05, 0.5, 1.0, 2.0, 10.0, 40.0]).unsqueeze(1)
    rows = Int8Linear(linear.weight, linear.bias, relu=relu, per_row=True)
    per_call = Int8Linear(linear.weight, linear.bias, relu=relu)
    with torch.inference_mode():
        expected = linear(x).relu() if relu else linear(x)
        got = rows(x)
        assert got.shape == (6, 48)
        for i in range(6):
            assert torch.equal(rows(x[i : i + 1]), got[i : i + 1])  # alone == in the batch
            # within ~1% of the row's own range, where one scale per call is not, for the quiet rows
            assert (got[i] - expected[i]).abs().max() <= 0.015 * expected[i].abs().max() + 1e-6
        assert (got - expected).abs()[0].max() < (per_call(x) - expected).abs()[0].max()
        assert (rows.weight_kn is not None) == int_mm and (rows.weight_packed is None) == int_mm
        if relu:
            assert (got >= 0).all()
        assert rows(x.view(2, 3, 64)).shape == (2, 3, 48) and rows(x[:0]).shape == (0, 48)
        with pytest.raises(ValueError, match="non-finite"):
            rows(torch.full((2, 64), float("inf")))


@needs_int8
@pytest.mark.skipif(not has_int_mm(), reason="torch._int_mm does not run on the CPU in this PyTorch build")
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_per_row_int_mm_gives_the_onednn_values(monkeypatch, relu: bool, bias: bool) -> None:
    """The two per-row paths (torch._int_mm for most layers, the oneDNN op for wide ones) are
    one computation: the same integer products, scaled in the same order, so the same floats."""
    torch.manual_seed(4)
    linear = nn.Linear(96, 40, bias=bias)
    x = torch.randn(7, 96) * torch.linspace(0.1, 20.0, 7).unsqueeze(1)
    int_mm = Int8Linear(linear.weight, linear.bias, relu=relu, per_row=True)
    monkeypatch.setattr(Int8Linear, "INT_MM_MAX_OUT", 39)  # 40 outputs: over the limit
    onednn = Int8Linear(linear.weight, linear.bias, relu=relu, per_row=True)
    assert int_mm.weight_kn is not None and onednn.weight_kn is None
    assert "torch._int_mm" in repr(int_mm) and "torch._int_mm" not in repr(onednn)
    with torch.inference_mode():
        assert torch.equal(int_mm(x), onednn(x))


@needs_int8
def test_quantize_int8_per_row_keeps_grus_fp32() -> None:
    for model in _transformer_and_gru():
        expected = _logits(model)
        int8 = quantize_int8(model, per_row=True)
        linears = [m for m in int8.modules() if isinstance(m, Int8Linear)]
        assert linears and all(m.per_row for m in linears)
        assert nn.Linear not in {type(m) for m in int8.modules()}
        assert any(type(m) is nn.GRU for m in model.modules()) == any(type(m) is nn.GRU for m in int8.modules())
        got = _logits(int8)
        assert (got - expected).abs().max() <= 0.05 * expected.abs().max()


def test_quantize_int8_per_row_needs_onednn(monkeypatch) -> None:
    monkeypatch.setattr(quantize, "has_onednn_int8", lambda: False)
    with pytest.raises(ValueError, match="int8-rows needs oneDNN"):
        quantize_int8(_transformer_and_gru()[0], per_row=True)


def _transformer_and_gru() -> list[nn.Module]:
    torch.manual_seed(0)
    common = {"d_model": 32, "heads": 4, "ffn_dim": 64, "enc_layers": 2, "dec_layers": 2}
    return [
        build_model(
            ModelConfig(encoder="transformer", decoder="transformer", attention="multihead", **common),
            src_vocab_size=40,
            tgt_vocab_size=40,
        ).eval(),
        build_model(
            ModelConfig(encoder="gru", decoder="gru", attention="bahdanau", **common),
            src_vocab_size=40,
            tgt_vocab_size=40,
        ).eval(),
    ]


def _logits(model: nn.Module) -> torch.Tensor:
    torch.manual_seed(2)
    src = torch.randint(4, 40, (3, 9))
    tgt = torch.randint(4, 40, (3, 6))
    mask = torch.ones_like(src, dtype=torch.bool)
    with torch.inference_mode():
        return model(src, mask, tgt)


@pytest.mark.parametrize("onednn", [True, False])
def test_quantize_int8_layers_and_outputs(monkeypatch, onednn: bool) -> None:
    if onednn and not has_onednn_int8():
        pytest.skip("no oneDNN int8 linear in this PyTorch build")
    monkeypatch.setattr(quantize, "has_onednn_int8", lambda: onednn)
    for model in _transformer_and_gru():
        expected = _logits(model)
        int8 = quantize_int8(model)
        kinds = {type(m) for m in int8.modules()}
        assert nn.Linear not in kinds and nn.GRU not in kinds  # every linear and GRU is int8
        assert (Int8Linear in kinds) is onednn
        assert any(isinstance(m, nn.Linear) for m in model.modules())  # the original is untouched
        got = _logits(int8)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= 0.05 * expected.abs().max()
