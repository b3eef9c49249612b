"""What a token store is built from, and its key (see :mod:`seq2seq.data.store`).

**Key.** A store is found again by a SHA-256 of what it was built from (:func:`store_key`): the
split's files (path, size, modification time; a hash of the text for a hub dataset), how they
are read (format, languages, header), the source normalisation, the SentencePiece model(s)
(fingerprints) and :data:`VERSION`. Any change gives another key, so another store; old ones
are left where they are (delete the cache directory to reclaim the space).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from seq2seq.data.sources import TextSource
from seq2seq.data.store import KINDS, VERSION
from seq2seq.data.tokenizer import TokenizerPair


def store_key(spec: dict[str, Any]) -> str:
    """A SHA-256 of ``spec`` (JSON with sorted keys): equal for equal inputs."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def store_spec(
    kind: str, source: TextSource, reading: dict[str, Any], normalize: str, tokenizers: TokenizerPair
) -> dict[str, Any]:
    """What a store of ``source`` is built from (its key is :func:`store_key` of this).

    ``reading``: the settings that decide what is read from the files (format, languages...);
    ``normalize``: the source normalisation (``data.normalize``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown store kind {kind!r} (one of {', '.join(KINDS)})")
    return {
        "version": VERSION,
        "kind": kind,
        "source": source.name,
        "identity": source.identity(),
        "reading": reading,
        "normalize": normalize,
        "src_tokenizer": tokenizers.src.fingerprint,
        "tgt_tokenizer": tokenizers.tgt.fingerprint if kind == "pairs" else None,
    }
