"""int8 decoding on CPU: :func:`quantize_int8`.

The weights of every ``nn.Linear`` (attention projections, feed-forward layers, the output
projection) and ``nn.GRU`` are stored as int8 and their activations quantized on the fly: the
linears as :class:`Int8Linear` (oneDNN's int8 GEMM), the GRUs with
``torch.ao.quantization.quantize_dynamic`` (fbgemm), which also serves the linears where this
PyTorch build lacks oneDNN's int8 linear. For decoding only: the converted model is not
trained, saved or moved. (fp32 decoding on oneDNN kernels: ``onednn.py``.)
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from typing import Optional

import torch
from torch import Tensor, nn

from seq2seq.infer.onednn import linear_relu_pairs, replace_linears


def quantize_int8(model: nn.Module, per_row: bool = False) -> nn.Module:
    """A copy of ``model`` (on CPU, eval mode) with int8 dynamic quantization of its linear
    and GRU layers. A tied output projection gets its own int8 copy of the embedding.

    Linears become :class:`Int8Linear` where PyTorch has oneDNN's int8 linear (a feed-forward
    Linear -> ReLU becomes one, ReLU fused); fbgemm's dynamic linears are the fallback, slower
    and further from the fp32 outputs (docs/performance.md).

    ``per_row`` (``--quantize int8-rows``): one activation scale per row instead of one per call,
    so a sentence's output does not depend on the other sentences of its batch; GRU layers then
    stay fp32 (fbgemm's int8 GRU has one scale per call). Needs oneDNN's int8 linear.
    """
    model = copy.deepcopy(model).cpu().eval()
    if per_row:
        if not has_onednn_int8():
            raise ValueError(
                "int8-rows needs oneDNN's int8 linear, which this PyTorch build lacks; use --quantize int8"
            )
        return replace_linears(model, functools.partial(Int8Linear, per_row=True))
    with warnings.catch_warnings():  # torch deprecates the quantized tensor types it still uses here
        warnings.simplefilter("ignore")
        if not has_onednn_int8():
            pairs = [[f"{name}.{i}", f"{name}.{i + 1}"] for name, i in linear_relu_pairs(model)]
            if pairs:  # Linear -> ReLU (feed-forward layers): one int8 kernel with the ReLU fused
                torch.ao.quantization.fuse_modules(model, pairs, inplace=True)
            fused = torch.ao.nn.intrinsic.LinearReLU
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU, fused}, dtype=torch.qint8)
        torch.ao.quantization.quantize_dynamic(model, {nn.GRU}, dtype=torch.qint8, inplace=True)
    return replace_linears(model, Int8Linear)


@functools.cache
def has_int_mm() -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) runs on the CPU in this PyTorch build."""
    try:
        a = torch.ones(2, 8, dtype=torch.int8)
        return bool(torch._int_mm(a, a.t().contiguous()).eq(8).all())
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def has_onednn_int8() -> bool:
    """Whether this PyTorch build has oneDNN's int8 linear ops (``onednn.qlinear_pointwise``) and
    the dynamic quantization :class:`Int8Linear` feeds them with."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch, "quantize_per_tensor")):
        return False
    try:
        torch.ops.onednn.qlinear_pointwise.default  # noqa: B018 (attribute lookup is the check)
        torch.ops.onednn.qlinear_prepack.default  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


class Int8Linear(nn.Module):
    """An inference-only ``nn.Linear`` with int8 weights, its activations quantized per call.

    Weights: int8, symmetric, one scale per output feature, packed once for oneDNN's int8 GEMM
    (``onednn.qlinear_pointwise``, the kernel ``torch.compile`` uses for int8 CPU linears).
    Activations: uint8 over the input's whole range (one scale and zero point per call, from its
    minimum and maximum), which the kernel turns back into fp32 with the bias added (and the
    ReLU, when ``relu``). Against fbgemm's dynamic linears (7-bit activations, one weight scale
    per matrix) the error is about half, and decoding faster. The activation scale is shared by
    all rows of a call, so a row's output depends on the other rows (a sentence's on its batch).

    ``per_row``: one symmetric scale per row instead (as CTranslate2 quantizes), so a row's output
    depends on that row alone, with about two thirds of the error. Where ``torch._int_mm`` runs on
    the CPU (oneDNN's s8 x s8 GEMM, called without building a primitive each time), the rows go in as
    int8 and its int32 products are scaled per column, then per row, the bias added (and the ReLU
    applied); layers with more than ``INT_MM_MAX_OUT`` outputs (a vocabulary projection), and
    builds without it, take oneDNN's int8 linear op instead, the rows as uint8 around a zero point of
    128, scaled the same way after it. The two give the same values (the same integer products,
    scaled in the same order): the choice is speed only (docs/performance.md, "int8-rows on
    torch._int_mm").
    """

    PACK_FOR_ROWS = 64  # the batch size oneDNN picks the packed layout for (any batch size works)
    # Per-row layers with more outputs than this take oneDNN's int8 linear op: there the scaling
    # passes over the (rows, out) products cost more than the op's fixed cost saves (measured, 80
    # rows: 256 -> 8000 took 1.22 ms on torch._int_mm against 1.01 ms; 256 -> 768, 0.13 against 0.18).
    INT_MM_MAX_OUT = 4096

    def __init__(
        self, weight: Tensor, bias: Optional[Tensor] = None, relu: bool = False, per_row: bool = False
    ) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.relu = relu
        self.per_row = per_row
        weight = weight.detach().float()
        # Plain attributes, not buffers: the packed weight is a oneDNN tensor (not saved or moved).
        self.weight_scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,)
        int8 = torch.round(weight / self.weight_scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
        # Either (in, out) int8 for torch._int_mm (per_row, see the class docstring) or packed for the oneDNN op.
        self.weight_kn: Optional[Tensor] = None
        self.weight_packed: Optional[Tensor] = None
        if per_row and self.out_features <= self.INT_MM_MAX_OUT and has_int_mm():
            self.weight_kn = int8.t().contiguous()
        else:
            self.weight_packed = torch.ops.onednn.qlinear_prepack.default(int8, [self.PACK_FOR_ROWS, self.in_features])
        self.weight_zero_point = torch.zeros(self.out_features, dtype=torch.long)
        self.bias = None if bias is None else bias.detach().float().contiguous()
        self._post_op = "relu" if relu else "none"
        # ``forward`` quantizes with torch.quantize_per_tensor: one C++ pass where the same in
        # plain tensor ops made decoding 10% slower. PyTorch deprecates quantized tensor types
        # (warning once per process); here one lives for one line. The warning is consumed
        # here, where it means nothing to the user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.quantize_per_tensor(torch.zeros(1), 1.0, 0, torch.quint8)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in) fp32 -> (..., out) fp32"""
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        if x.size(0) == 0:
            return x.new_zeros(*lead, self.out_features)
        if self.per_row:
            return self._forward_rows(x).view(*lead, self.out_features)
        lo, hi = torch.aminmax(x)  # one pass (torch.quantize_per_tensor_dynamic takes two)
        lo, hi = min(lo.item(), 0.0), max(hi.item(), 0.0)  # the range must hold 0 (padding, ReLU)
        scale = (hi - lo) / 255.0 or 1.0
        if not math.isfinite(scale):
            raise ValueError(
                f"int8 linear layer got non-finite inputs (min {lo}, max {hi}): the model "
                "produces NaN or inf; it would in fp32 too"
            )
        zero_point = min(255, max(0, round(-lo / scale)))
        q = torch.quantize_per_tensor(x, scale, zero_point, torch.quint8)  # uint8 over [lo, hi]
        y = torch.ops.onednn.qlinear_pointwise.default(
            q.view(torch.uint8),
            scale,
            zero_point,
            self.weight_packed,
            self.weight_scale,
            self.weight_zero_point,
            self.bias,
            1.0,
            0,
            torch.float32,
            self._post_op,
            [],
            "",
        )  # (rows, out)
        return y.view(*lead, self.out_features)

    def _forward_rows(self, x: Tensor) -> Tensor:
        """x (rows, in) fp32 -> (rows, out) fp32, one activation scale per row."""
        amax = x.abs().amax(dim=1, keepdim=True)  # (rows, 1)
        if not math.isfinite(amax.sum().item()):
            raise ValueError(
                "int8 linear layer got non-finite inputs: the model produces NaN or inf; it would in fp32 too"
            )
        scale = amax.clamp_(min=1e-12).div_(127.0)  # (rows, 1)
        rounded = (x / scale).round_()  # (rows, in): -127..127
        if self.weight_kn is not None:
            q = rounded.to(torch.int8)
            y = torch._int_mm(q, self.weight_kn).float().mul_(self.weight_scale)  # (rows, out), in row-scale units
            return self._finish_rows(y, scale)
        q = rounded.add_(128.0).to(torch.uint8)  # 1..255 around 128
        y = torch.ops.onednn.qlinear_pointwise.default(
            q,
            1.0,
            128,
            self.weight_packed,
            self.weight_scale,
            self.weight_zero_point,
            None,
            1.0,
            0,
            torch.float32,
            "none",
            [],
            "",
        )  # (rows, out), in units of each row's scale
        return self._finish_rows(y, scale)

    def _finish_rows(self, y: Tensor, scale: Tensor) -> Tensor:
        """y (rows, out) in units of each row's scale, scale (rows, 1) -> y scaled, with the bias (and ReLU)."""
        y = y.mul_(scale)
        if self.bias is not None:
            y = y.add_(self.bias)
        return y.relu_() if self.relu else y

    def extra_repr(self) -> str:
        relu = ", ReLU" if self.relu else ""
        rows = (", a scale per row" + (", torch._int_mm" if self.weight_kn is not None else "")) if self.per_row else ""
        return f"in_features={self.in_features}, out_features={self.out_features}{relu}, int8 oneDNN{rows}"
