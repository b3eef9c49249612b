"""Faster CPU training kernels for ``nn.Linear`` (the same math) and ``nn.Dropout`` (its rate rounded).

Two things dominated an fp32 training step on the CPU measured (docs/performance.md):

* PyTorch's fp32 GEMM is slower than oneDNN's (``mkldnn._linear_pointwise``, the op
  ``torch.compile`` uses for CPU linears) on training-sized linears, for the forward and both
  backward products. :class:`OneDnnTrainingLinear` runs a linear's forward and backward on
  it (fp32 only: under bf16 autocast PyTorch already uses oneDNN).
* Dropout's mask came from ``bernoulli_``, one float draw per element on one core.
  :class:`FastDropout` takes 16 random bits per element from 64-bit draws (a quarter of the
  generator calls) and keeps an element when its bits are >= p * 65536: the drop
  probability is p rounded to a multiple of 1/65536 (0.1 -> 0.100006), the scale 1 / (1 - p).

:func:`use_cpu_kernels` switches a model's layers to them in place (the parameters, their
names and sharing stay as they are), and the layers fall back to PyTorch's own kernels off
CPU, for other dtypes, or where this PyTorch build lacks oneDNN. Random draws still come from
PyTorch's generator, so seeded runs and exact resumes stay reproducible.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

__all__ = ["FastDropout", "OneDnnTrainingLinear", "has_onednn_linear", "use_cpu_kernels"]


def has_onednn_linear() -> bool:
    """Whether this PyTorch build has oneDNN's linear ops on dense tensors (CPU builds since 2.0)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._linear_pointwise  # noqa: B018 (attribute lookup is the check)
        torch.ops.mkldnn._reorder_linear_weight  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def onednn_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, relu: bool = False) -> Tensor:
    """x (..., in) @ weight (out, in)^T + bias on oneDNN: fp32 CPU tensors, any strides; no autograd."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu" if relu else "none", [], "")


class _OneDnnLinearFunction(torch.autograd.Function):
    """y = x W^T + b, forward and backward on oneDNN."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = onednn_linear(grad, weight.t())  # (..., out) @ W (out, in) -> (..., in)
        grad_2d = grad.reshape(-1, grad.size(-1))  # (N, out)
        if ctx.needs_input_grad[1]:
            x_2d = x.reshape(-1, x.size(-1))  # (N, in)
            # oneDNN copies a transposed left operand to contiguous first: transpose the narrower one.
            if x_2d.size(1) < grad_2d.size(1):
                grad_w = onednn_linear(x_2d.t(), grad_2d.t()).t()  # ((in, N) @ (N, out))^T
            else:
                grad_w = onednn_linear(grad_2d.t(), x_2d.t())  # (out, N) @ (N, in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_2d.sum(0)
        return grad_x, grad_w, grad_b


class OneDnnTrainingLinear(nn.Linear):
    """``nn.Linear`` whose fp32 CPU forward and backward run on oneDNN (see the module docstring).

    Only products of at least ``MIN_MACS`` multiply-adds go there: below, oneDNN's set-up
    per call and per new shape costs more than it saves (the threshold is measured:
    docs/performance.md).
    """

    MIN_MACS = 1 << 21

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and x.numel() * self.out_features >= self.MIN_MACS
            and not torch.is_autocast_enabled("cpu")
        ):
            return _OneDnnLinearFunction.apply(x, self.weight, self.bias)
        return super().forward(x)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper random mask on CPU (see the module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace or not 0 < self.p < 1:
            return super().forward(x)
        return _fast_dropout(x, self.p)


def _fast_dropout(x: Tensor, p: float) -> Tensor:
    n = x.numel()
    # Each 64-bit draw gives four 16-bit lanes, read as int16 in [-32768, 32767].
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    lanes = words.view(torch.int16)[:n].view(x.shape)
    keep = lanes >= round(p * 65536) - 32768  # P(drop) = round(p * 65536) / 65536
    return x * keep * (1.0 / (1.0 - p))  # autograd: the gradient is masked and scaled alike


def use_cpu_kernels(model: nn.Module) -> nn.Module:
    """Switch every plain ``nn.Linear`` and ``nn.Dropout`` of ``model`` to the faster CPU layers,
    in place (their class only: parameters, state-dict names and tied weights are untouched);
    returns the model. Linears are left alone where oneDNN is unavailable."""
    linears = has_onednn_linear()
    for module in model.modules():
        if type(module) is nn.Linear and linears:
            module.__class__ = OneDnnTrainingLinear
        elif type(module) is nn.Dropout:
            module.__class__ = FastDropout
    return model
