"""fp32 decoding on CPU with oneDNN kernels: :func:`onednn_linears` puts the linear layers (and
the GRU decoder's gate projections) on oneDNN with their weights converted once. The same math
as the model's own layers, for inference only: the converted layers are not trained, saved or
moved. :func:`replace_linears` is shared with the int8 path (``quantize.py``).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from seq2seq.models.cpu_kernels import has_onednn_linear, onednn_linear
from seq2seq.models.decoders import GRUDecoder


def replace_linears(model: nn.Module, layer: Callable[..., nn.Module]) -> nn.Module:
    """Every ``nn.Linear`` of ``model`` -> ``layer(weight, bias)``, in place; a Linear -> ReLU pair of
    an ``nn.Sequential`` (feed-forward layers) -> ``layer(weight, bias, relu=True)`` and Identity."""
    for name, i in linear_relu_pairs(model):
        seq = model.get_submodule(name)
        seq[i] = layer(seq[i].weight, seq[i].bias, relu=True)
        seq[i + 1] = nn.Identity()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, layer(child.weight, child.bias))
    return model


def linear_relu_pairs(model: nn.Module) -> list[tuple[str, int]]:
    """(name of an ``nn.Sequential``, i) for each of its ``nn.Linear`` at i followed by ``nn.ReLU``."""
    return [
        (name, i)
        for name, seq in model.named_modules()
        if isinstance(seq, nn.Sequential)
        for i in range(len(seq) - 1)
        if type(seq[i]) is nn.Linear and type(seq[i + 1]) is nn.ReLU
    ]


class OneDnnLinear(nn.Module):
    """An fp32 inference-only ``nn.Linear`` on oneDNN's kernel, its weight reordered once.

    Where PyTorch has it, the weight is pre-packed into oneDNN's blocked layout for the GEMM
    (``mkldnn._reorder_linear_weight``, what ``torch.compile`` uses for CPU linears) and dense
    activations go straight in and out (``mkldnn._linear_pointwise``), much faster than
    converting every activation to and from a oneDNN tensor, which is the fallback
    (``torch.utils.mkldnn.MkldnnLinear``'s way).
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

    Same math, different kernels: on decoding-sized matrices oneDNN's fp32 GEMM is several
    times PyTorch's default on the CPUs measured (docs/performance.md). Only for inference:
    the replaced layers have no gradients. A no-op where oneDNN is unavailable.
    """
    if not torch.backends.mkldnn.is_available():
        return model
    replace_linears(model, OneDnnLinear)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (
                isinstance(parent, GRUDecoder)
                and type(child) is nn.GRU
                and not child.bidirectional
                and child.batch_first
                and child.bias
            ):  # (encoders run packed sequences: left alone)
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
            OneDnnLinear(getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"bias_ih_l{k}")) for k in range(gru.num_layers)
        )
        self.hidden_proj = nn.ModuleList(
            OneDnnLinear(getattr(gru, f"weight_hh_l{k}"), getattr(gru, f"bias_hh_l{k}")) for k in range(gru.num_layers)
        )

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
