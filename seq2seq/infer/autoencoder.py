"""Using a trained encoder: sentence vectors, binary codes, reconstruction, anomaly scores,
sampling, classification.

>>> ae = Autoencoder.from_checkpoint("runs/autoencoder/sst2_dae/best")
>>> ae.encode(["a gorgeous film .", "dull and lifeless ."]).shape
(2, 512)
>>> ae.reconstruct(["a gorgeous film ."])
['a gorgeous film .']

``encode`` works with any checkpoint (autoencoder, translation model, classifier): it returns
the encoder's context vector. The other methods need the parts they use (a decoder for
``reconstruct``/``score``/``sample``, a binary bottleneck for ``codes``, a classifier head for
``classify``) and say so when the checkpoint lacks them.

Every method returns one result per input line, in input order. Empty lines have no tokens to
encode: their vectors are zeros and their scores NaN, with a warning that counts them.

A checkpoint whose encoder reads images or vectors (``model.encoder`` cnn / mlp) takes arrays in
place of lines (:mod:`seq2seq.infer.image_autoencoder`): ``encode`` and ``codes`` give its
codes, and for an image autoencoder (``model.decoder: image``) ``reconstruct`` gives images and
``score`` each image's mean squared error per pixel.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from seq2seq.config import Config, SearchConfig
from seq2seq.data.batching import Example, collate, collate_source
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TokenizerPair
from seq2seq.errors import Seq2SeqError
from seq2seq.infer.image_autoencoder import ImageAutoencoderMixin
from seq2seq.infer.search import SearchSpec, generate
from seq2seq.infer.translator import Translator, encode_sources, length_batches
from seq2seq.models import Classifier, Composite, Encoded, Seq2SeqModel
from seq2seq.runtime import resolve_device


class _FixedContext:
    """A model-like object whose ``encode`` returns given context vectors, for decoding from a
    latent code (sampling, interpolation) with the ordinary search."""

    def __init__(self, model: Seq2SeqModel, context: torch.Tensor) -> None:
        self.decoder = model.decoder
        self.encoded = model.encoded_from_context(context)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> Encoded:
        return self.encoded


class Autoencoder(ImageAutoencoderMixin):
    """A checkpoint's encoder (and decoder) applied to raw text; see the module docstring."""

    def __init__(
        self,
        model: Composite,
        tokenizers: TokenizerPair,
        cfg: Config,
        device: Union[str, torch.device] = "cpu",
        labels: Optional[list[str]] = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizers = tokenizers
        self.cfg = cfg
        self.device = torch.device(device)
        self.labels = labels or []
        self.max_src_tokens = cfg.model.max_positions

    @classmethod
    def from_checkpoint(
        cls, directory: Union[str, Path], device: str = "auto", search: Optional[SearchConfig] = None
    ) -> Autoencoder:
        """Load a checkpoint; ``search``: the decoding and batching settings (default: the
        checkpoint's ``search`` section)."""
        from seq2seq.checkpoint import load_checkpoint

        dev = resolve_device(device)
        model, cfg, tokenizers, meta = load_checkpoint(directory, dev)
        if search is not None:
            cfg = dataclasses.replace(cfg, search=search)
        return cls(model, tokenizers, cfg, dev, meta.get("labels"))

    # ------------------------------------------------------------------ helpers
    @property
    def context_dim(self) -> int:
        return self.model.encoder.context_dim

    def _require(self, what: str) -> None:
        kind = getattr(getattr(self.model, "bottleneck", None), "kind", None)
        if what == "decoder" and getattr(getattr(self.model, "decoder", None), "bag_of_words", False):
            from seq2seq.models.bow import CANNOT_GENERATE

            raise Seq2SeqError(CANNOT_GENERATE)
        ok, need = {
            "decoder": (isinstance(self.model, Seq2SeqModel), "a decoder (an autoencoder or translation checkpoint)"),
            "binary": (kind == "binary", "a binary code layer (model.bottleneck: binary)"),
            "variational": (kind == "variational", "a variational bottleneck (model.bottleneck: variational)"),
            "classifier": (isinstance(self.model, Classifier), "a classifier head (task: classification)"),
        }[what]
        if not ok:
            raise Seq2SeqError(
                f"this needs a checkpoint with {need}; this one has task={self.cfg.task}, "
                f"model.bottleneck={self.cfg.model.bottleneck}"
            )

    def _batched(self, lines: list[str], batch_tokens: Optional[int], progress: bool, desc: str):
        """(positions, src, src_mask, ids) for token-budget batches of the non-empty lines."""
        ids = encode_sources(self.tokenizers.src, lines, self.max_src_tokens)
        empty = sum(1 for seq in ids if not seq)
        if empty:
            warnings.warn(
                f"{empty} empty input line(s) have no tokens: zero vectors / NaN scores for them", stacklevel=3
            )
        batches = list(length_batches(ids, batch_tokens or self.cfg.search.batch_tokens))
        for positions in tqdm(batches, desc=desc, unit="batch", leave=False, disable=None if progress else True):
            src, src_mask = collate_source([ids[i] for i in positions])
            yield positions, src.to(self.device), src_mask.to(self.device), ids

    def has_tokens(self, lines: list[str]) -> np.ndarray:
        """(N,) bool: whether each line has any token (empty and whitespace-only lines have none:
        their vectors are zeros, which match nothing meaningful in a search)."""
        return np.array([bool(ids) for ids in self.tokenizers.src.encode_batch(lines)], dtype=bool)

    # ------------------------------------------------------------------ methods
    @torch.inference_mode()
    def encode(self, lines: list[str], batch_tokens: Optional[int] = None, progress: bool = False) -> np.ndarray:
        """(N, context_dim) float32: each line's context vector (mu for a variational
        bottleneck, code probabilities for a binary one); images: :meth:`encode_items`."""
        if self.reads_items:
            return self.encode_items(lines, progress)
        out = np.zeros((len(lines), self.context_dim), dtype=np.float32)
        for positions, src, src_mask, _ in self._batched(lines, batch_tokens, progress, "encode"):
            out[positions] = self.model.context_vectors(src, src_mask).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def codes(self, lines: list[str], batch_tokens: Optional[int] = None, progress: bool = False) -> np.ndarray:
        """(N, bits) bool: each line's binary code (binary bottleneck only)."""
        self._require("binary")
        if self.reads_items:
            return self.codes_items(lines, progress)
        out = np.zeros((len(lines), self.context_dim), dtype=bool)
        for positions, src, src_mask, _ in self._batched(lines, batch_tokens, progress, "hash"):
            context = self.model.encoder(src, src_mask).context
            out[positions] = self.model.bottleneck.bits(context).cpu().numpy()
        return out

    def reconstruct(self, lines: list[str], beam: Optional[int] = None, progress: bool = False) -> list[str]:
        """Each line passed through the bottleneck and decoded with the search settings (``beam``:
        another beam size; 1 = greedy). An image autoencoder: (N, *image_shape) images
        (:meth:`reconstruct_items`)."""
        if self.image_shape is not None:
            return self.reconstruct_items(lines, progress)  # type: ignore[return-value]
        self._require("decoder")
        translator = Translator(self.model, self.tokenizers, self.cfg.search, self.device, self.max_src_tokens)
        return translator.translate(lines, beam=beam, progress=progress)

    @torch.inference_mode()
    def score(self, lines: list[str], batch_tokens: Optional[int] = None, progress: bool = False) -> np.ndarray:
        """(N, 3) float64 reconstruction loss per line: [total NLL (nats), tokens (EOS
        included), NLL per token]. High per-token loss = unlike the training text (anomaly).
        Images: (N,) mean squared error per pixel (:meth:`score_items`)."""
        if self.reads_items:
            return self.score_items(lines, progress)
        self._require("decoder")
        out = np.full((len(lines), 3), np.nan)
        max_tgt = self.cfg.data.max_tgt_tokens - 1 if self.cfg.data.max_tgt_tokens > 0 else None
        for positions, src, src_mask, ids in self._batched(lines, batch_tokens, progress, "score"):
            batch = collate([Example(i, ids[i], ids[i][:max_tgt]) for i in positions]).to(self.device)
            encoded = self.model.encode(src, src_mask)
            logits = self.model.decoder(batch.tgt_in, encoded)  # (B, T, V)
            nll = F.cross_entropy(
                logits.float().transpose(1, 2), batch.tgt_out, ignore_index=PAD_ID, reduction="none"
            )  # (B, T)
            total = nll.sum(dim=1).double().cpu().numpy()  # (B,)
            tokens = batch.tgt_mask.sum(dim=1).cpu().numpy()  # (B,)
            out[positions] = np.stack([total, tokens, total / tokens], axis=1)
        return out

    @torch.inference_mode()
    def classify(
        self, lines: list[str], batch_tokens: Optional[int] = None, progress: bool = False
    ) -> tuple[list[str], np.ndarray]:
        """(label per line, (N, labels) probabilities); empty lines get the label '' and NaNs."""
        self._require("classifier")
        probs = np.full((len(lines), len(self.labels)), np.nan, dtype=np.float32)
        for positions, src, src_mask, _ in self._batched(lines, batch_tokens, progress, "classify"):
            probs[positions] = torch.softmax(self.model(src, src_mask).float(), dim=-1).cpu().numpy()
        best = [self.labels[int(np.argmax(p))] if not np.isnan(p).any() else "" for p in probs]
        return best, probs

    @torch.inference_mode()
    def decode_contexts(self, contexts: torch.Tensor, max_len: int = 60) -> list[str]:
        """Greedy decoding from given context vectors (B, c) (autoencoders without attention);
        at most ``max_len`` tokens, and never more than ``model.max_positions - 1``."""
        self._require("decoder")
        if self.cfg.model.attention != "none":
            raise Seq2SeqError("decoding from a context vector alone needs a model without attention")
        contexts = contexts.to(self.device)
        b = contexts.size(0)
        src = torch.full((b, 1), EOS_ID, dtype=torch.long, device=self.device)  # unused by _FixedContext
        mask = torch.ones(b, 1, dtype=torch.bool, device=self.device)
        # Greedy, and the length is max_len alone: there is no source to measure.
        spec = SearchSpec.from_config(
            self.cfg.search,
            BOS_ID,
            EOS_ID,
            beam=1,
            min_len=0,
            max_len_a=0.0,
            max_len_b=max_len,
            max_output_len=self.max_src_tokens - 1,
        )
        hyps = generate(_FixedContext(self.model, contexts), src, mask, spec)
        return [self.tokenizers.tgt.decode(h[0].tokens) for h in hyps]

    def sample(self, n: int, seed: int = 1, max_len: int = 60) -> list[str]:
        """``n`` sentences decoded (greedily) from z ~ N(0, I) (variational bottleneck only)."""
        self._require("variational")
        g = torch.Generator().manual_seed(seed)
        return self.decode_contexts(torch.randn(n, self.context_dim, generator=g), max_len)

    def interpolate(self, first: str, second: str, steps: int = 5, max_len: int = 60) -> list[str]:
        """Sentences decoded along the straight line between two sentences' codes (both ends
        included): ``steps`` points. For a variational model the codes are the means."""
        if steps < 2:
            raise Seq2SeqError("interpolation needs at least 2 steps")
        if not first.strip() or not second.strip():
            raise Seq2SeqError("interpolation needs two non-empty sentences")
        ends = torch.from_numpy(self.encode([first, second]))  # (2, c)
        if self.model.bottleneck is not None and self.model.bottleneck.kind == "binary":
            raise Seq2SeqError("interpolation between binary codes is not meaningful; use a plain or variational model")
        weights = torch.linspace(0.0, 1.0, steps).unsqueeze(1)  # (steps, 1)
        return self.decode_contexts((1 - weights) * ends[0] + weights * ends[1], max_len)
