"""Dynamic int8 quantization for CPU inference.

The weights of every ``nn.Linear`` (attention projections, feed-forward layers, the output
projection) and ``nn.GRU`` are stored as int8 and their activations quantized on the fly
(``torch.ao.quantization.quantize_dynamic``). Only for decoding on CPU: the quantized model
is not trained and not saved.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (on CPU, eval mode) with int8 dynamic quantization of its linear
    and GRU layers. A tied output projection gets its own int8 copy of the embedding."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch deprecates the quantized tensor types it still uses here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU}, dtype=torch.qint8)


class OneDnnLinear(nn.Module):
    """An fp32 inference-only ``nn.Linear`` whose weight is converted once to oneDNN's layout and
    which runs on oneDNN's kernel (what ``torch.utils.mkldnn.MkldnnLinear`` does, without TorchScript)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        bias = linear.bias.detach().float() if linear.bias is not None else weight.new_zeros(self.out_features)
        # Plain attributes, not buffers: oneDNN tensors cannot be saved, copied or moved.
        self.weight_onednn = weight.to_mkldnn()
        self.bias_onednn = bias.to_mkldnn()

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in) fp32 -> (..., out)"""
        y = torch._C._nn.mkldnn_linear(x.contiguous().to_mkldnn(), self.weight_onednn, self.bias_onednn)
        return y.to_dense()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, oneDNN"


def onednn_linears(model: nn.Module) -> nn.Module:
    """``model`` (fp32, CPU, eval) with every ``nn.Linear`` replaced by a :class:`OneDnnLinear`;
    returns the same model.

    Same math, different kernels: on this project's benchmark CPU (AMD EPYC) PyTorch's default
    fp32 GEMM reached 40-70 GFLOPS on decoding-sized matrices and oneDNN's 160-240. Only for
    inference: the replaced layers have no gradients. A no-op where oneDNN is unavailable.
    """
    if not torch.backends.mkldnn.is_available():
        return model
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, OneDnnLinear(child))
    return model
