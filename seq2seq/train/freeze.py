"""Frozen parts (``train.freeze``, and the half that staged training does not train): no
gradient, and they run forward only, in eval mode (no dropout)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from seq2seq.errors import ConfigError
from seq2seq.models import Composite


def freeze_parts(model: Composite, parts: list[str]) -> None:
    """``train.freeze``: parts (``encoder``, ``decoder``; see ``Seq2SeqModel.PARTS``) or other
    submodules to keep fixed: no gradient, and they run forward-only in eval mode (no dropout)."""
    for name in parts:
        try:
            modules = model.part(name)
        except KeyError:
            raise ConfigError(f"train.freeze: the model has no part named '{name}' (try encoder or decoder)") from None
        for module in modules:
            for p in module.parameters():
                p.requires_grad_(False)


def frozen(modules: list[torch.nn.Module]) -> bool:
    """True when none of ``modules`` has a trainable parameter."""
    return not any(p.requires_grad for m in modules for p in m.parameters())


def train_mode(model: Composite) -> None:
    """``model.train()``, except that frozen parts stay in eval mode (forward only)."""
    model.train()
    for part in model.PARTS:
        modules = model.part(part)
        if frozen(modules):
            for m in modules:
                m.eval()


def no_grad_if(condition: bool) -> AbstractContextManager:
    return torch.no_grad() if condition else nullcontext()
