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
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (on CPU, eval mode) with int8 dynamic quantization of its linear
    and GRU layers. A tied output projection gets its own int8 copy of the embedding."""
    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch deprecates the quantized tensor types it still uses here
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU}, dtype=torch.qint8)
