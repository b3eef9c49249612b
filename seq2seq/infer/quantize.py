"""Faster CPU inference: int8 dynamic quantization, and fp32 layers on oneDNN kernels.

:func:`quantize_int8`: the weights of every ``nn.Linear`` (attention projections, feed-forward
layers, the output projection) and ``nn.GRU`` are stored as int8 and their activations
quantized on the fly: the linears as :class:`Int8Linear` (oneDNN's int8 GEMM), the GRUs with
``torch.ao.quantization.quantize_dynamic`` (fbgemm), which also serves the linears where this
PyTorch build lacks oneDNN's int8 linear.

:func:`onednn_linears`: the same fp32 math, with the linear layers (and the GRU decoder's gate
projections) on oneDNN with their weights converted once.

Both are for decoding on CPU only: the converted models are not trained, saved or moved.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from seq2seq.models.cpu_kernels import has_onednn_linear, onednn_linear
from seq2seq.models.decoders import GRUDecoder


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (on CPU, eval mode) with int8 dynamic quantization of its linear
    and GRU layers. A tied output projection gets its own int8 copy of the embedding.

    Linears become :class:`Int8Linear` where PyTorch has oneDNN's int8 linear (a feed-forward
    Linear -> ReLU becomes one, ReLU fused); fbgemm's dynamic linears are the fallback. Against
    those, on the benchmark CPU: beam-5 Transformer decoding 369 vs 329 sentences/s, and 91% vs
    85% of the outputs (2,000 Multi30k sentences) identical to the fp32 model's.
    """
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch deprecates the quantized tensor types it still uses here
        warnings.simplefilter("ignore")
        if not has_onednn_int8():
            pairs = [[f"{name}.{i}", f"{name}.{i + 1}"] for name, i in _linear_relu_pairs(model)]
            if pairs:  # Linear -> ReLU (feed-forward layers): one int8 kernel with the ReLU fused
                torch.ao.quantization.fuse_modules(model, pairs, inplace=True)
            fused = torch.ao.nn.intrinsic.LinearReLU
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU, fused}, dtype=torch.qint8)
        torch.ao.quantization.quantize_dynamic(model, {nn.GRU}, dtype=torch.qint8, inplace=True)
    return _replace_linears(model, Int8Linear)


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
    per matrix) the error is about half and, on the benchmark CPU, decoding faster.
    """

    PACK_FOR_ROWS = 64  # the batch size oneDNN picks the packed layout for (any batch size works)

    def __init__(self, weight: Tensor, bias: Optional[Tensor] = None, relu: bool = False) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.relu = relu
        weight = weight.detach().float()
        # Plain attributes, not buffers: the packed weight is a oneDNN tensor (not saved or moved).
        self.weight_scale = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (out,)
        int8 = torch.round(weight / self.weight_scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
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
        lo, hi = torch.aminmax(x)  # one pass (torch.quantize_per_tensor_dynamic takes two)
        lo, hi = min(lo.item(), 0.0), max(hi.item(), 0.0)  # the range must hold 0 (padding, ReLU)
        scale = (hi - lo) / 255.0 or 1.0
        if not math.isfinite(scale):
            raise ValueError(f"int8 linear layer got non-finite inputs (min {lo}, max {hi}): the model "
                             "produces NaN or inf; it would in fp32 too")
        zero_point = min(255, max(0, round(-lo / scale)))
        q = torch.quantize_per_tensor(x, scale, zero_point, torch.quint8)  # uint8 over [lo, hi]
        y = torch.ops.onednn.qlinear_pointwise.default(
            q.view(torch.uint8), scale, zero_point, self.weight_packed, self.weight_scale,
            self.weight_zero_point, self.bias, 1.0, 0, torch.float32, self._post_op, [], "")  # (rows, out)
        return y.view(*lead, self.out_features)

    def extra_repr(self) -> str:
        relu = ", ReLU" if self.relu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}{relu}, int8 oneDNN"


def _replace_linears(model: nn.Module, layer: Callable[..., nn.Module]) -> nn.Module:
    """Every ``nn.Linear`` of ``model`` -> ``layer(weight, bias)``, in place; a Linear -> ReLU pair of
    an ``nn.Sequential`` (feed-forward layers) -> ``layer(weight, bias, relu=True)`` and Identity."""
    for name, i in _linear_relu_pairs(model):
        seq = model.get_submodule(name)
        seq[i] = layer(seq[i].weight, seq[i].bias, relu=True)
        seq[i + 1] = nn.Identity()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, layer(child.weight, child.bias))
    return model


def _linear_relu_pairs(model: nn.Module) -> list[tuple[str, int]]:
    """(name of an ``nn.Sequential``, i) for each of its ``nn.Linear`` at i followed by ``nn.ReLU``."""
    return [(name, i) for name, seq in model.named_modules() if isinstance(seq, nn.Sequential)
            for i in range(len(seq) - 1) if type(seq[i]) is nn.Linear and type(seq[i + 1]) is nn.ReLU]


class OneDnnLinear(nn.Module):
    """An fp32 inference-only ``nn.Linear`` on oneDNN's kernel, its weight reordered once.

    Where PyTorch has it, the weight is pre-packed into oneDNN's blocked layout for the GEMM
    (``mkldnn._reorder_linear_weight``, what ``torch.compile`` uses for CPU linears) and dense
    activations go straight in and out (``mkldnn._linear_pointwise``): on the benchmark CPU
    about twice the speed of converting every activation to and from a oneDNN tensor, which
    is the fallback (``torch.utils.mkldnn.MkldnnLinear``'s way).
    """

    # The batch size oneDNN picks the packed layout for; measured: any value from 32 up
    # gave the same speed for 5 to 1,500 rows, 1 was slower for few rows.
    PACK_FOR_ROWS = 64

    def __init__(self, weight: Tensor, bias: Optional[Tensor] = None, relu: bool = False) -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.relu = relu  # ReLU(linear(x)), fused into the kernel where the packed ops exist
        weight = weight.detach().float().contiguous()
        bias = bias.detach().float().contiguous() if bias is not None else weight.new_zeros(self.out_features)
        # Plain attributes, not buffers: oneDNN tensors cannot be saved, copied or moved.
        self.packed = has_onednn_linear()
        if self.packed:
            self.weight_onednn = torch.ops.mkldnn._reorder_linear_weight(weight, self.PACK_FOR_ROWS)
            self.bias = bias
        else:
            self.weight_onednn = weight.to_mkldnn()
            self.bias_onednn = bias.to_mkldnn()

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> OneDnnLinear:
        return cls(linear.weight, linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in) fp32 -> (..., out)"""
        if self.packed:
            return onednn_linear(x, self.weight_onednn, self.bias, relu=self.relu)
        y = torch._C._nn.mkldnn_linear(x.contiguous().to_mkldnn(), self.weight_onednn, self.bias_onednn).to_dense()
        return torch.relu_(y) if self.relu else y

    def extra_repr(self) -> str:
        relu = ", ReLU" if self.relu else ""
        return f"in_features={self.in_features}, out_features={self.out_features}{relu}, oneDNN"


def onednn_linears(model: nn.Module) -> nn.Module:
    """``model`` (fp32, CPU, eval) with every ``nn.Linear`` replaced by a :class:`OneDnnLinear`
    and a GRU decoder's ``nn.GRU`` by a :class:`OneDnnGRU`; returns the same model.

    Same math, different kernels: on this project's benchmark CPU (AMD EPYC) PyTorch's default
    fp32 GEMM reached 40-70 GFLOPS on decoding-sized matrices and oneDNN's 160-240. Only for
    inference: the replaced layers have no gradients. A no-op where oneDNN is unavailable.
    """
    if not torch.backends.mkldnn.is_available():
        return model
    _replace_linears(model, OneDnnLinear)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (isinstance(parent, GRUDecoder) and type(child) is nn.GRU and not child.bidirectional
                    and child.batch_first and child.bias):  # (encoders run packed sequences: left alone)
                setattr(parent, name, OneDnnGRU(child))
    return model


class OneDnnGRU(nn.Module):
    """Inference-only stand-in for a unidirectional, batch-first ``nn.GRU``: the same equations
    (gates r, z, n in PyTorch's order), its gate projections on :class:`OneDnnLinear`. Used by
    the GRU decoder one step at a time, where PyTorch's fp32 GEMM was the slow part."""

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        self.num_layers, self.hidden_size = gru.num_layers, gru.hidden_size
        self.input_proj = nn.ModuleList(
            OneDnnLinear(getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"bias_ih_l{k}")) for k in range(gru.num_layers))
        self.hidden_proj = nn.ModuleList(
            OneDnnLinear(getattr(gru, f"weight_hh_l{k}"), getattr(gru, f"bias_hh_l{k}")) for k in range(gru.num_layers))

    def forward(self, x: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, in), h0 (layers, B, H) -> outputs of the top layer (B, T, H), h_n (layers, B, H)."""
        hidden = list(h0.unbind(0))
        outputs = []
        for t in range(x.size(1)):
            inp = x[:, t]
            for k in range(self.num_layers):
                gi_r, gi_z, gi_n = self.input_proj[k](inp).chunk(3, dim=-1)  # (B, H) each
                gh_r, gh_z, gh_n = self.hidden_proj[k](hidden[k]).chunk(3, dim=-1)
                r = torch.sigmoid(gi_r + gh_r)
                z = torch.sigmoid(gi_z + gh_z)
                n = torch.tanh(gi_n + r * gh_n)
                hidden[k] = inp = n + z * (hidden[k] - n)  # (1 - z) * n + z * h
            outputs.append(inp)
        return torch.stack(outputs, dim=1), torch.stack(hidden, dim=0)
