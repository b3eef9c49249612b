"""The faster CPU training layers compute what the PyTorch layers they replace compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq.config import ModelConfig
from seq2seq.models import build_model
from seq2seq.models.cpu_kernels import (
    FastDropout,
    OneDnnTrainingLinear,
    has_onednn_linear,
    use_cpu_kernels,
)

needs_onednn = pytest.mark.skipif(not has_onednn_linear(), reason="no oneDNN in this PyTorch build")


def _grads(layer: nn.Module, x: torch.Tensor, grad_out: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    layer.zero_grad()
    layer(x).backward(grad_out)
    return [x.grad, *(p.grad for p in layer.parameters())]


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 24), (3, 5, 24), (2, 3, 4, 24)])
def test_onednn_linear_matches_nn_linear(shape: tuple[int, ...], bias: bool) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(24, 300, bias=bias)
    fast = nn.Linear(24, 300, bias=bias)
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = OneDnnTrainingLinear
    x = torch.randn(*shape)
    grad_out = torch.randn(*shape[:-1], 300)
    torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-5)
    for got, want in zip(_grads(fast, x, grad_out), _grads(plain, x, grad_out)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    x_strided = torch.randn(*shape[:-1], 48)[..., ::2]  # non-contiguous input
    torch.testing.assert_close(fast(x_strided), plain(x_strided), atol=1e-5, rtol=1e-5)


@needs_onednn
def test_onednn_linear_falls_back_under_autocast_and_for_other_dtypes() -> None:
    layer = OneDnnTrainingLinear(8, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(3, 8)).dtype == torch.bfloat16
    layer.double()
    assert layer(torch.randn(3, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_fast_dropout_rate_scale_and_gradient(p: float) -> None:
    torch.manual_seed(0)
    layer = FastDropout(p)
    x = torch.rand(1000, 1000) + 1.0  # no zeros of its own
    x.requires_grad_()
    y = layer(x)
    dropped = y.eq(0)
    assert abs(dropped.float().mean().item() - p) < 0.003
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p))
    y.sum().backward()
    torch.testing.assert_close(x.grad, (~dropped).float() / (1 - p))
    # independent lanes: neighbours are dropped together at the rate p * p
    both = (dropped[:, ::2] & dropped[:, 1::2]).float().mean().item()
    assert abs(both - p * p) < 0.003


def test_fast_dropout_is_seeded_and_off_in_eval() -> None:
    layer = FastDropout(0.2)
    x = torch.randn(4, 33)
    torch.manual_seed(5)
    a = layer(x)
    torch.manual_seed(5)
    assert torch.equal(a, layer(x))
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)


def test_use_cpu_kernels_keeps_parameters_names_and_ties() -> None:
    cfg = ModelConfig(
        encoder="transformer", decoder="transformer", d_model=32, enc_layers=1, dec_layers=1, heads=4, ffn_dim=64
    )
    torch.manual_seed(0)
    model = build_model(cfg, 50, 50)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    use_cpu_kernels(model)
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert model.decoder.output.weight is model.decoder.embedding.weight
    kinds = {type(m) for m in model.modules()}
    assert FastDropout in kinds and nn.Dropout not in kinds
    if has_onednn_linear():
        assert OneDnnTrainingLinear in kinds and nn.Linear not in kinds
