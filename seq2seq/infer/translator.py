"""The high-level Translator: raw text lines in, detokenized text lines out, in order."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import torch
from tqdm.auto import tqdm

from seq2seq.config import SearchConfig
from seq2seq.data.batching import collate_source
from seq2seq.data.domain import find_out_of_domain
from seq2seq.data.normalize import source_normalizer
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, TokenizerPair
from seq2seq.errors import CheckpointError, DataError
from seq2seq.infer.items import ItemInputMixin
from seq2seq.infer.search import Hypothesis, SearchSpec, generate
from seq2seq.infer.sources import (
    _capped_message,
    _cut_sources,
    _truncated_message,
    encode_sources,
    length_batches,
    truncate_sources,
)
from seq2seq.infer.streaming import (
    DEFAULT_WINDOW,
    SHOWN_LINES,
    FirstLines,
    StreamingMixin,
    StreamOutOfDomain,
    default_window,
    line_windows,
)
from seq2seq.models import Seq2SeqModel
from seq2seq.runtime import (
    DECODING_DTYPES,
    avoid_per_shape_attention_plans,
    resolve_device,
    retain_freed_memory,
)

# Sources are padded to a multiple of this many positions: then a sentence's attention sums run over
# the same vector lanes alone as in any batch (padding adds exact zeros), so its output does not
# depend on the longest source beside it, with --quantize int8-rows too (docs/serving.md).
SOURCE_MULTIPLE = 16

# Defined in sources.py and streaming.py; imported from here by the CLI, the server, tests and recipes.
__all__ = [
    "DEFAULT_WINDOW",
    "SHOWN_LINES",
    "FirstLines",
    "StreamOutOfDomain",
    "Translator",
    "default_window",
    "encode_sources",
    "length_batches",
    "line_windows",
    "truncate_sources",
]


class Translator(StreamingMixin, ItemInputMixin):
    """Translate raw text with a trained model.

    >>> translator = Translator.from_checkpoint("runs/multi30k_transformer/best")
    >>> translator.translate(["Ein Hund läuft."])
    ['A dog is running.']

    Every input line gives exactly one output line, in input order. Empty or
    whitespace-only lines give empty outputs; lines longer than the model's limit are
    truncated (with a warning). Lines are sorted by length into token-budget batches, so
    little compute goes to padding; the result of a line does not depend on its batch (except
    with ``quantize="int8"``, whose activation scales are per batch: ``"int8-rows"`` has none).

    Sources go through the checkpoint's ``data.normalize`` first (``numerals``: ``1,000`` ->
    ``1000``). Lines the model was not trained to read (characters its source vocabulary maps
    to ``<unk>``, sources longer than any training source: see :mod:`seq2seq.data.domain`) are
    translated all the same, with one warning that lists them; ``strict=True`` raises a
    DataError instead, before anything is decoded.

    ``max_src_tokens`` is the model's ``max_positions``; outputs are capped at
    ``max_output_tokens`` tokens (default ``max_src_tokens - 1``: the decoder's positions,
    BOS included), whatever ``max_len_a``/``max_len_b`` allow, so a long input or a large
    ``max_len_a`` can neither overrun a position table nor decode for ever.

    A model whose encoder reads images or vectors (``model.encoder`` cnn / mlp) takes arrays in
    place of lines: ``translate(array)`` with an array (N, *item_shape) or (N, S, *item_shape), or
    a list of (S, *item_shape) arrays (see :mod:`seq2seq.infer.items`).
    """

    def __init__(
        self,
        model: Seq2SeqModel,
        tokenizers: TokenizerPair,
        search: Optional[SearchConfig] = None,
        device: Union[str, torch.device] = "cpu",
        max_src_tokens: int = 1024,
        max_output_tokens: Optional[int] = None,
        normalize: str = "none",
        source_limits: Optional[dict[str, int]] = None,
        check_inputs: bool = True,
    ) -> None:
        """``normalize``: the training data's ``data.normalize``; ``source_limits``: the
        checkpoint's record of the training sources (None: only unknown characters are checked);
        ``check_inputs=False``: no out-of-domain report (validation during training)."""
        self.model = model
        self.tokenizers = tokenizers
        self.search = search or SearchConfig()
        self.device = torch.device(device)
        self.max_src_tokens = max_src_tokens
        self.max_output_tokens = max_src_tokens - 1 if max_output_tokens is None else max_output_tokens
        self.normalize_name = normalize
        self.normalize = source_normalizer(normalize)
        self.source_limits = source_limits
        self.check_inputs = check_inputs

    @classmethod
    def from_checkpoint(
        cls,
        directory: Union[str, Path],
        device: str = "auto",
        search: Optional[SearchConfig] = None,
        quantize: Optional[str] = None,
        fast_cpu: bool = True,
        precision: str = "fp32",
    ) -> Translator:
        """Load a checkpoint for decoding; ``quantize="int8"``: dynamic int8 weights (CPU only);
        ``"int8-rows"``: the same with one activation scale per row, so that a sentence's output
        does not depend on its batch (:func:`seq2seq.infer.quantize.quantize_int8`).

        ``search``: the decoding settings (default: the checkpoint's ``search`` section); the
        CLI passes the checkpoint's settings with its flags applied.

        ``precision``: "fp32" (default), "bf16" or "fp16": the model's weights and activations in
        that type (log-probabilities and scores stay fp32). For GPUs; on a CPU with native bf16
        (AVX512-BF16) bf16 can pay too, with about the same BLEU; fp16 on a CPU is slow (no fp16
        GEMM there).

        On CPU (``fast_cpu``) the fp32 linear layers run on oneDNN kernels (see
        :func:`seq2seq.infer.onednn.onednn_linears`): the same model, decoded faster.
        ``fast_cpu`` also has malloc keep freed memory for reuse
        (:func:`seq2seq.runtime.retain_freed_memory`, a process-wide setting), which spares
        decoding the page faults of memory returned and taken back at every step.

        The speed-ups measured for each: docs/performance.md, "Figures behind code defaults".
        """
        from seq2seq.checkpoint import (
            load_checkpoint,  # checkpoint imports the data and model packages
        )

        dev = resolve_device(device)
        if quantize not in (None, "int8", "int8-rows"):
            raise ValueError(f"quantize must be None, 'int8' or 'int8-rows', got {quantize!r}")
        if quantize and dev.type != "cpu":
            raise ValueError(f"int8 quantization is for CPU decoding, not {dev} (device 'cpu', --device cpu)")
        if precision not in DECODING_DTYPES:
            raise ValueError(f"precision must be one of {', '.join(DECODING_DTYPES)}, got {precision!r}")
        if quantize and precision != "fp32":
            raise ValueError(f"int8 quantization runs the rest of the model in fp32, not {precision}")
        model, cfg, tokenizers, meta = load_checkpoint(directory, dev)
        if not isinstance(model, Seq2SeqModel):
            raise CheckpointError(
                f"{directory} is a {cfg.task} checkpoint: it has no decoder to generate with "
                "(use 'seq2seq classify' or 'seq2seq encode')"
            )
        if dev.type == "cpu" and fast_cpu:
            retain_freed_memory()
        if dev.type == "cuda":
            avoid_per_shape_attention_plans()
        if precision != "fp32":
            model = model.to(DECODING_DTYPES[precision])
        elif quantize:
            from seq2seq.infer.quantize import quantize_int8

            model = quantize_int8(model, per_row=quantize == "int8-rows")
        elif dev.type == "cpu" and fast_cpu:
            from seq2seq.infer.onednn import onednn_linears

            model = onednn_linears(model)
        # The encoder's positions cap the source length; leave room for nothing else (no BOS/EOS on the source).
        limits = meta.get("source_limits")
        return cls(
            model,
            tokenizers,
            search or cfg.search,
            dev,
            max_src_tokens=cfg.model.max_positions,
            normalize=cfg.data.normalize,
            source_limits=limits if isinstance(limits, dict) else None,
        )

    def _spec(self, beam: Optional[int], nbest: int) -> SearchSpec:
        return SearchSpec.from_config(
            self.search,
            BOS_ID,
            EOS_ID,
            beam=beam or self.search.beam,
            nbest=nbest,
            max_output_len=self.max_output_tokens,
        )  # checks 1 <= nbest <= beam

    @torch.inference_mode()
    def translate_hypotheses(
        self,
        lines: list[str],
        beam: Optional[int] = None,
        nbest: int = 1,
        batch_tokens: Optional[int] = None,
        progress: bool = False,
        batch_rows: Optional[int] = None,
        strict: bool = False,
        prefixes: Optional[Sequence[Optional[str]]] = None,
    ) -> list[list[tuple[str, float]]]:
        """Up to ``nbest`` (text, score) pairs per input line, best first.

        A batch holds at most ``batch_tokens`` source tokens and ``batch_rows`` hypotheses
        (sentences x beam); both default to the search settings. Lines outside the training
        domain give one warning; with ``strict`` a DataError (nothing is decoded).
        All lines are read and sorted together: for input of any length, in bounded memory,
        use :meth:`translate_windows` or :meth:`translate_stream`.

        ``prefixes``: one target text per line (None or "": none) that its outputs must start
        with: the decoder is forced through the prefix's tokens, then continues (see
        :mod:`seq2seq.infer.search`). An empty line's output is its prefix.
        """
        if self.reads_items:
            if prefixes is not None and any(prefixes):
                raise DataError("prefixes are for text sources; this model reads images or vectors")
            return self.item_hypotheses(lines, beam, nbest, batch_rows, progress)
        spec = self._spec(beam, nbest)
        prefix_ids = self.prefix_ids(prefixes, len(lines))
        self.model.eval()
        sources, ids = self.read_sources(lines)
        if self.check_inputs or strict:
            unreadable = find_out_of_domain(sources, ids, self.source_limits, self.normalize_name)
            if unreadable and strict:
                raise DataError(
                    f"{unreadable.summary()}. Nothing was translated (strict): fix or remove "
                    "these lines, or translate without --strict to get output for them anyway"
                )
            if unreadable:
                warnings.warn(unreadable.summary(), stacklevel=2)
        truncated = _cut_sources(ids, self.max_src_tokens)
        if truncated:
            warnings.warn(_truncated_message(truncated, self.max_src_tokens), stacklevel=2)
        results, capped = self._decode(ids, spec, batch_tokens, batch_rows, progress, prefix_ids)
        if capped:
            warnings.warn(_capped_message(capped, self.max_output_tokens), stacklevel=2)
        return results

    def prefix_ids(self, prefixes: Optional[Sequence[Optional[str]]], count: int) -> Optional[list[list[int]]]:
        """The target token ids of each of ``count`` lines' prefix (None or "": none), or None
        when no line has one."""
        if prefixes is None:
            return None
        if len(prefixes) != count:
            raise ValueError(f"{len(prefixes)} prefixes for {count} lines: give one per line (None for none)")
        if not any(prefixes):
            return None
        return [self.tokenizers.tgt.encode(p) if p else [] for p in prefixes]

    def _decode(
        self,
        ids: list[list[int]],
        spec: SearchSpec,
        batch_tokens: Optional[int],
        batch_rows: Optional[int],
        progress: bool,
        prefix_ids: Optional[list[list[int]]] = None,
    ) -> tuple[list[list[tuple[str, float]]], int]:
        """Hypotheses for source ``ids`` (already cut to ``max_src_tokens``), in their order, and
        how many outputs stopped at ``max_output_tokens`` rather than by EOS or max_len_a/b;
        ``prefix_ids``: the target ids each line's outputs start with (an empty line: just those)."""
        decode = self.tokenizers.tgt.decode
        results: list[list[tuple[str, float]]] = [
            [(decode(prefix_ids[i]) if prefix_ids else "", 0.0)] for i in range(len(ids))
        ]
        batches = self.batches(ids, spec.beam, batch_tokens, batch_rows)
        capped = 0
        for positions in tqdm(batches, desc="translate", unit="batch", leave=False, disable=None if progress else True):
            src, src_mask = collate_source([ids[i] for i in positions], SOURCE_MULTIPLE, self.max_src_tokens)
            src, src_mask = src.to(self.device), src_mask.to(self.device)
            forced = [prefix_ids[i] for i in positions] if prefix_ids else None
            hyps: list[list[Hypothesis]] = generate(self.model, src, src_mask, spec, prefixes=forced)
            for pos, sentence_hyps in zip(positions, hyps):
                # (no hypothesis at all only if the model gives every continuation probability 0)
                results[pos] = [(self.tokenizers.tgt.decode(h.tokens), h.score) for h in sentence_hyps] or [
                    ("", -math.inf)
                ]
                longest = max((len(h.tokens) for h in sentence_hyps), default=0)
                wanted = self.search.max_len_a * len(ids[pos]) + self.search.max_len_b
                capped += wanted > self.max_output_tokens and longest >= self.max_output_tokens
        return results, capped

    def read_sources(self, lines: list[str]) -> tuple[list[str], list[list[int]]]:
        """The lines as the model reads them (through ``data.normalize``) and their token ids,
        not yet cut to ``max_src_tokens``."""
        sources = [self.normalize(line) for line in lines]
        return sources, self.tokenizers.src.encode_batch(sources)

    def batches(
        self, ids: list[list[int]], beam: int, batch_tokens: Optional[int] = None, batch_rows: Optional[int] = None
    ) -> list[list[int]]:
        """The decoding batches of source ``ids`` (positions, non-empty lines only): at most
        ``batch_tokens`` source tokens and ``batch_rows`` hypotheses (sentences x ``beam``) each."""
        max_sentences = max(1, (batch_rows or self.search.batch_rows) // beam)
        return list(length_batches(ids, batch_tokens or self.search.batch_tokens, max_sentences))

    def translate(
        self,
        lines: list[str],
        beam: Optional[int] = None,
        batch_tokens: Optional[int] = None,
        progress: bool = False,
        batch_rows: Optional[int] = None,
        strict: bool = False,
        prefixes: Optional[Sequence[Optional[str]]] = None,
    ) -> list[str]:
        """One detokenized translation per input line, in order (``strict`` and ``prefixes``: see
        :meth:`translate_hypotheses`)."""
        hyps = self.translate_hypotheses(
            lines,
            beam=beam,
            nbest=1,
            batch_tokens=batch_tokens,
            progress=progress,
            batch_rows=batch_rows,
            strict=strict,
            prefixes=prefixes,
        )
        return [h[0][0] for h in hyps]
