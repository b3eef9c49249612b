"""seq2seq: encoder-decoder sequence models built on PyTorch, SentencePiece and sacreBLEU.

The public API, importable from the top::

    from seq2seq import Autoencoder, Config, Trainer, Translator, load_config

Each name is imported on first use, so ``import seq2seq`` stays light (no PyTorch until a name
that needs it is touched).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Bumped whenever the checkpoint layout changes; loading a checkpoint with another
# format version is refused with a clear message.
CHECKPOINT_FORMAT = 1

# public name -> the module that defines it
_LAZY = {
    "Autoencoder": "seq2seq.infer.autoencoder",
    "Config": "seq2seq.config",
    "Seq2SeqError": "seq2seq.errors",
    "Trainer": "seq2seq.train.trainer",
    "Translator": "seq2seq.infer.translator",
    "load_config": "seq2seq.config",
}

__all__ = [
    "CHECKPOINT_FORMAT",
    "Autoencoder",
    "Config",
    "Seq2SeqError",
    "Trainer",
    "Translator",
    "__version__",
    "load_config",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on demand
    from seq2seq.config import Config, load_config
    from seq2seq.errors import Seq2SeqError
    from seq2seq.infer.autoencoder import Autoencoder
    from seq2seq.infer.translator import Translator
    from seq2seq.train.trainer import Trainer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
