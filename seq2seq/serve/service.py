"""What a served checkpoint can do, as functions of a batch of texts: the model side of the server.

:class:`Service` loads a checkpoint once and runs the operations its task allows (translation
checkpoints, digits models included: ``translate`` and ``attention``; autoencoders: ``encode``,
``reconstruct``, ``score``; classifiers: ``encode``, ``classify``) on a list of items, one
JSON-ready result per item, in order. It knows nothing of HTTP: :mod:`seq2seq.serve.app` validates
requests and the :class:`~seq2seq.serve.batcher.Batcher` merges them into the lists run here.

A text's result never depends on the other texts of the list (the search is batch-independent;
``--quantize int8`` is the exception, its activation scales are per call; ``int8-rows`` is not:
docs/serving.md),
and the notes the CLI gives as one warning per run (a text longer than the model reads, outside
what it was trained on, empty) are given per text, in its result's ``warnings``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import warnings
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Optional, Union

from seq2seq.config import Config, SearchConfig
from seq2seq.errors import Seq2SeqError

log = logging.getLogger("seq2seq.serve")

__all__ = ["OPERATIONS", "Service"]

# operation -> the tasks that have it
OPERATIONS: dict[str, tuple[str, ...]] = {
    "translate": ("translation",),
    "attention": ("translation",),
    "encode": ("autoencoder", "classification"),
    "reconstruct": ("autoencoder",),
    "score": ("autoencoder",),
    "classify": ("classification",),
}


def _finite(x: float, digits: int = 6) -> Optional[float]:
    """A float for JSON: rounded, None for NaN and infinities (JSON has neither)."""
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


class Service:
    """A loaded checkpoint and the operations its task allows; see the module docstring.

    Load with :meth:`from_checkpoint`. ``run(key, items)`` is what the batcher calls; ``key`` is
    ``(operation, *settings)`` as :mod:`seq2seq.serve.app` builds it.
    """

    def __init__(
        self, cfg: Config, meta: dict[str, Any], model: Any, path: Path, describe: Optional[dict[str, Any]] = None
    ) -> None:
        """``model``: a :class:`~seq2seq.infer.translator.Translator` (translation) or an
        :class:`~seq2seq.infer.autoencoder.Autoencoder` (autoencoder, classification)."""
        self.cfg = cfg
        self.meta = meta
        self.model = model
        self.path = path
        self.task = cfg.task
        self.describe = describe or {}
        self.operations = [op for op, tasks in OPERATIONS.items() if self.task in tasks]
        if self.task == "translation" and not self.has_attention:
            self.operations.remove("attention")

    @classmethod
    def from_checkpoint(
        cls,
        directory: Union[str, Path],
        device: str = "auto",
        search: Optional[SearchConfig] = None,
        quantize: Optional[str] = None,
        precision: str = "fp32",
    ) -> Service:
        """Load ``directory`` for serving; ``search``: the default decoding settings (default:
        the checkpoint's); ``quantize``/``precision``: as for ``Translator.from_checkpoint``
        (translation checkpoints only)."""
        from seq2seq.checkpoint import resolve_checkpoint, verify_checkpoint
        from seq2seq.config import config_from_dict

        path = resolve_checkpoint(directory)
        meta = verify_checkpoint(path)
        cfg = config_from_dict(meta["config"])
        if search is not None:
            cfg = dataclasses.replace(cfg, search=search)
        if cfg.task == "translation":
            from seq2seq.infer.translator import Translator

            model: Any = Translator.from_checkpoint(
                path, device=device, search=cfg.search, quantize=quantize, precision=precision
            )
        else:
            if quantize or precision != "fp32":
                raise Seq2SeqError(
                    f"--quantize and --precision are for translation checkpoints; this one has task={cfg.task}"
                )
            from seq2seq.infer.autoencoder import Autoencoder

            model = Autoencoder.from_checkpoint(path, device=device, search=cfg.search)
        describe = {"device": str(model.device), "quantize": quantize, "precision": precision}
        return cls(cfg, meta, model, path, describe)

    # ------------------------------------------------------------------ facts
    @property
    def has_attention(self) -> bool:
        """Whether the decoder attends to the source (attention maps can be drawn)."""
        return self.task != "classification" and self.cfg.model.attention != "none"

    @property
    def search(self) -> SearchConfig:
        return self.cfg.search

    def info(self) -> dict[str, Any]:
        """The checkpoint's description for ``/info``."""
        labels = self.meta.get("labels") if self.task == "classification" else None
        tok = self.model.tokenizers
        return {
            "task": self.task,
            "languages": {"source": self.cfg.data.src_lang, "target": self.cfg.data.tgt_lang},
            "vocabulary": {"source": tok.src.vocab_size, "target": tok.tgt.vocab_size},
            "parameters": self.meta.get("num_parameters"),
            "normalize": self.cfg.data.normalize,
            "max_source_tokens": self.cfg.model.max_positions,
            "attention": self.has_attention,
            "labels": labels,
            "search": dataclasses.asdict(self.search),
            "checkpoint": {
                "path": str(self.path),
                "format": self.meta.get("format"),
                "seq2seq_version": self.meta.get("seq2seq_version"),
                "step": self.meta.get("step"),
                "epoch": self.meta.get("epoch"),
            },
            "runtime": self.describe,
            "config": self.meta.get("config"),
        }

    def batch_cap(self, key: Hashable) -> int:
        """The most texts merged into one call for ``key``: one decoding batch's rows
        (``search.batch_rows`` hypotheses: sentences x beam); the translator's token and row
        caps then split it as they split any input."""
        beam = key[1] if isinstance(key, tuple) and key[0] in ("translate", "attention", "reconstruct") else 1
        return max(1, self.search.batch_rows // max(1, beam or self.search.beam))

    # ------------------------------------------------------------------ running
    def run(self, key: Hashable, items: list[Any]) -> list[dict[str, Any]]:
        """One result per item for the operation ``key[0]`` with the settings ``key[1:]``."""
        op, *settings = key
        if op not in self.operations:
            raise Seq2SeqError(f"a {self.task} checkpoint cannot {op}")
        # The notes are given per text instead (source_notes). catch_warnings swaps the process's
        # warning filters while a batch runs: a warning from another thread meanwhile is logged
        # at debug level here rather than printed. Only this (worker) thread runs the model.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = getattr(self, f"_{op}")(items, *settings)
        for w in caught:
            log.debug("%s: %s", op, w.message)
        return results

    def source_notes(self, texts: list[str]) -> list[list[str]]:
        """Per text, what the CLI would warn about: cut to the model's length, outside the
        training domain, no tokens."""
        from seq2seq.data.domain import find_out_of_domain

        if self.task == "translation":
            sources, ids = self.model.read_sources(texts)
            report = find_out_of_domain(sources, ids, self.model.source_limits, self.model.normalize_name)
        else:
            sources, ids = texts, self.model.tokenizers.src.encode_batch(texts)
            report = None
        limit = self.cfg.model.max_positions
        notes: list[list[str]] = [[] for _ in texts]
        for i, seq in enumerate(ids):
            if not seq and self.task != "translation":
                notes[i].append("no tokens: a zero vector / no score")
            if len(seq) > limit:
                notes[i].append(f"longer than {limit} subword tokens: truncated to the model's limit")
        if report:
            for i in report.unknown_characters:
                notes[i].append(
                    "has characters the source vocabulary does not have (read as <unk>): the output is unreliable"
                )
            for i in report.not_numerals:
                notes[i].append("not a number in digits: the output is unreliable")
            for i in report.too_long:
                notes[i].append("longer than anything the model was trained on: the output is unreliable")
        return notes

    @staticmethod
    def _with_notes(result: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        if notes:
            result["warnings"] = notes
        return result

    def _translator(self, length_penalty: Optional[float]) -> Any:
        """The translator, or a shallow copy (same model) with another length penalty."""
        if length_penalty is None or length_penalty == self.search.length_penalty:
            return self.model
        other = copy.copy(self.model)
        other.search = dataclasses.replace(self.search, length_penalty=length_penalty)
        return other

    def _translate(
        self, items: list[tuple[str, Optional[str]]], beam: int, nbest: int, length_penalty: Optional[float]
    ) -> list[dict[str, Any]]:
        texts = [text for text, _ in items]
        prefixes = [prefix for _, prefix in items]
        extra: dict[str, Any] = {"prefixes": prefixes} if any(prefixes) else {}
        hyps = self._translator(length_penalty).translate_hypotheses(texts, beam=beam, nbest=nbest, **extra)
        results = []
        for sentence, notes in zip(hyps, self.source_notes(texts)):
            result: dict[str, Any] = {"translation": sentence[0][0], "score": _finite(sentence[0][1])}
            if nbest > 1:
                result["hypotheses"] = [{"translation": t, "score": _finite(s)} for t, s in sentence]
            results.append(self._with_notes(result, notes))
        return results

    def _attention(self, items: list[tuple[str, Optional[str]]], beam: int) -> list[dict[str, Any]]:
        from seq2seq.infer.attention_maps import attention_weights
        from seq2seq.infer.translator import truncate_sources

        translator = self.model
        texts = [text for text, _ in items]
        outputs = [given for _, given in items]
        todo = [i for i, given in enumerate(outputs) if given is None]
        if todo:
            for i, text in zip(todo, translator.translate([texts[i] for i in todo], beam=beam)):
                outputs[i] = text
        tok = translator.tokenizers
        src_ids = truncate_sources(translator.read_sources(texts)[1], translator.max_src_tokens)
        tgt_ids = [tok.tgt.encode(text)[: translator.max_output_tokens] for text in outputs]
        nonempty = [i for i, ids in enumerate(src_ids) if ids]
        maps = attention_weights(translator.model, [src_ids[i] for i in nonempty], [tgt_ids[i] for i in nonempty])
        weights: list[Any] = [None] * len(items)
        for i, m in zip(nonempty, maps):
            weights[i] = m
        results = []
        for i, notes in enumerate(self.source_notes(texts)):
            w = weights[i]
            results.append(
                self._with_notes(
                    {
                        "translation": outputs[i],
                        "source_tokens": [tok.src.id_to_piece(t) for t in src_ids[i]],
                        "output_tokens": [tok.tgt.id_to_piece(t) for t in tgt_ids[i]] + ["</s>"]
                        if w is not None
                        else [],
                        "weights": [[round(float(x), 4) for x in row] for row in w] if w is not None else [],
                    },
                    notes,
                )
            )
        return results

    def _encode(self, texts: list[str], bits: bool) -> list[dict[str, Any]]:
        if bits:
            codes = self.model.codes(texts)
            return [
                self._with_notes({"code": "".join("1" if b else "0" for b in row)}, notes)
                for row, notes in zip(codes, self.source_notes(texts))
            ]
        vectors = self.model.encode(texts)
        return [
            self._with_notes({"vector": [round(float(x), 6) for x in row]}, notes)
            for row, notes in zip(vectors, self.source_notes(texts))
        ]

    def _reconstruct(self, texts: list[str], beam: int) -> list[dict[str, Any]]:
        outputs = self.model.reconstruct(texts, beam=beam)
        return [
            self._with_notes({"reconstruction": text}, notes) for text, notes in zip(outputs, self.source_notes(texts))
        ]

    def _score(self, texts: list[str]) -> list[dict[str, Any]]:
        scores = self.model.score(texts)
        return [
            self._with_notes(
                {
                    "per_token": _finite(mean, 4),
                    "total": _finite(total, 4),
                    "tokens": int(tokens) if math.isfinite(tokens) else 0,
                },
                notes,
            )
            for (total, tokens, mean), notes in zip(scores, self.source_notes(texts))
        ]

    def _classify(self, texts: list[str]) -> list[dict[str, Any]]:
        labels, probs = self.model.classify(texts)
        names = self.model.labels
        results = []
        for label, p, notes in zip(labels, probs, self.source_notes(texts)):
            finite = bool(len(p)) and all(math.isfinite(float(x)) for x in p)
            results.append(
                self._with_notes(
                    {
                        "label": label,
                        "probability": _finite(p.max(), 4) if finite else None,
                        "probabilities": {n: _finite(x, 4) for n, x in zip(names, p)} if finite else {},
                    },
                    notes,
                )
            )
        return results
