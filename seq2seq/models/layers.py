"""Layers the Transformer encoder and decoder share."""

from __future__ import annotations

from torch import Tensor, nn

from seq2seq.models.attention import MultiHeadAttention


def init_transformer_(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every Linear in ``module``; LayerNorms at (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():  # fused projections: Xavier per d x d block
        if isinstance(m, MultiHeadAttention):
            m.reset_parameters()


class FeedForward(nn.Module):
    """Position-wise Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
