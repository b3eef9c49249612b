"""SentencePiece tokenizers with fixed special ids, trained in memory.

Every model used by seq2seq has ``<pad>=0, <unk>=1, <s>=2, </s>=3`` (:data:`PAD_ID` ...), so
padding and BOS/EOS handling never depend on the vocabulary. A :class:`TokenizerPair` holds the
source and target tokenizers; with a joint vocabulary both are the same object.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Optional

import sentencepiece as spm

from seq2seq.config import TokenizerConfig
from seq2seq.data.textio import PathLike
from seq2seq.errors import DataError

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
SPECIAL_IDS = frozenset((PAD_ID, BOS_ID, EOS_ID))  # dropped by decode (UNK is kept: it shows as ⁇)

MODEL_TYPES = ("bpe", "unigram", "char", "word")
JOINT_FILE = "spm.model"
SRC_FILE = "src.spm.model"
TGT_FILE = "tgt.spm.model"

# Character models take every character covered by ``character_coverage``; vocab_size is only a
# (soft) upper bound that SentencePiece would otherwise enforce by mapping characters to <unk>.
_CHAR_VOCAB_SIZE = 1 << 20


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_encodable(texts: Sequence[str]) -> None:
    """Raise ValueError naming the first text that UTF-8 cannot encode (a lone surrogate, e.g.
    from ``errors="surrogateescape"``): SentencePiece's binding reports only a cast error."""
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            where = f"text {k + 1}" if len(texts) > 1 else "text"
            raise ValueError(
                f"{where} is not valid Unicode: the lone surrogate U+{ord(text[e.start]):04X} at "
                f"position {e.start} has no UTF-8 encoding"
            ) from None


class SpmTokenizer:
    """A SentencePiece model: text <-> ids (ids never include BOS/EOS unless added by the caller)."""

    def __init__(self, model_bytes: bytes, name: str = "<memory>") -> None:
        """Load a serialized SentencePiece model; ``name`` is used in error messages."""
        self._bytes = bytes(model_bytes)
        self.name = name
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self._bytes)
        except Exception as e:  # sentencepiece raises RuntimeError/OSError on a bad proto
            raise DataError(f"{name}: not a valid SentencePiece model ({e})") from None
        got = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if got != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise DataError(
                f"{name}: SentencePiece model has special ids pad={got[0]}, unk={got[1]}, "
                f"bos={got[2]}, eos={got[3]}; seq2seq needs pad=0, unk=1, bos=2, eos=3 "
                "(train it with --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3, or let seq2seq train one)"
            )

    # ---------------------------------------------------------------- construction / storage
    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_type: str = "bpe",
        character_coverage: float = 1.0,
        max_sentences: int = 2_000_000,
        lowercase: bool = False,
    ) -> SpmTokenizer:
        """Train a model in memory on ``texts`` (empty/whitespace-only lines are skipped).

        ``vocab_size`` is a soft limit (a small corpus gives a smaller vocabulary instead of an
        error). ``model_type="char"`` gives one token per character (no dummy ``▁`` prefix, so
        ``"4021"`` is 4 tokens) and takes every character covered by ``character_coverage``.
        ``max_sentences`` caps the sentences sampled for training; ``lowercase`` case-folds.

        Raises:
            DataError: no non-empty text, an unknown model type, or SentencePiece refused the
                settings (e.g. vocab_size smaller than the number of characters).
        """
        if model_type not in MODEL_TYPES:
            raise DataError(f"unknown SentencePiece model type '{model_type}' (use one of {', '.join(MODEL_TYPES)})")
        it: Iterator[str] = (t for t in texts if t and not t.isspace())
        first = next(it, None)
        if first is None:
            raise DataError("cannot train a tokenizer on an empty corpus (no non-empty lines)")
        is_char = model_type == "char"
        writer = io.BytesIO()
        failed: list[BaseException] = []  # what the texts raised (SentencePiece would wrap it in a RuntimeError)

        def sentences() -> Iterator[str]:
            try:
                yield first
                yield from it
            except BaseException as e:
                failed.append(e)
                raise

        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=writer,
                vocab_size=_CHAR_VOCAB_SIZE if is_char else int(vocab_size),
                model_type=model_type,
                character_coverage=float(character_coverage),
                input_sentence_size=int(max_sentences) if max_sentences > 0 else 0,
                shuffle_input_sentence=True,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,
                add_dummy_prefix=not is_char,
                normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
                minloglevel=2,
            )
        except RuntimeError as e:
            if failed:  # reading the texts failed (a bad line in a streamed file): that error, as it was
                raise failed[0] from None
            msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
            msg = msg.split("] ", 1)[-1]  # drop "INTERNAL: src/...cc(638) [check]" noise
            raise DataError(f"SentencePiece training failed ({model_type}, vocab_size={vocab_size}): {msg}") from None
        return cls(writer.getvalue(), name=f"<trained {model_type}>")

    @classmethod
    def from_bytes(cls, model_bytes: bytes) -> SpmTokenizer:
        """A tokenizer from serialized model bytes (e.g. stored in a checkpoint)."""
        return cls(model_bytes)

    @classmethod
    def load(cls, path: PathLike) -> SpmTokenizer:
        """Read a ``.model`` file. Raises DataError if it is missing or not a usable model."""
        p = Path(path)
        if not p.is_file():
            what = "is a directory" if p.is_dir() else "not found"
            raise DataError(f"SentencePiece model {what}: {p} (check tokenizer.model / the path)")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise DataError(f"cannot read SentencePiece model {p}: {e.strerror or e}") from None
        return cls(data, name=str(p))

    def save(self, path: PathLike) -> None:
        """Write the model to ``path`` atomically (parent directories are created)."""
        _atomic_write(Path(path), self._bytes)

    @property
    def model_bytes(self) -> bytes:
        """The serialized model (what :meth:`save` writes)."""
        return self._bytes

    @property
    def fingerprint(self) -> str:
        """First 16 hex chars of the SHA-256 of the model bytes: equal iff the vocabularies are."""
        return hashlib.sha256(self._bytes).hexdigest()[:16]

    # ---------------------------------------------------------------- text <-> ids
    @property
    def vocab_size(self) -> int:
        """Number of ids, special ids included."""
        return self._sp.get_piece_size()

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no BOS/EOS).

        Raises ValueError for a string that is not valid Unicode (a lone surrogate).
        """
        try:
            return self._sp.encode(text, out_type=int)
        except RuntimeError:  # pybind11 cannot pass the string to C++
            _check_encodable([text])
            raise

    def encode_batch(self, texts: Sequence[str], threads: int = -1) -> list[list[int]]:
        """Token ids of each text (no BOS/EOS), encoded in parallel by SentencePiece (``threads``
        of its own; -1: one per core).

        Raises ValueError naming the first text that is not valid Unicode (a lone surrogate).
        """
        if not texts:
            return []
        try:
            return self._sp.encode(list(texts), out_type=int, num_threads=threads)
        except (RuntimeError, TypeError):  # TypeError: "List elements must be str or bytes"
            _check_encodable(texts)
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; PAD/BOS/EOS are skipped wherever they are (no truncation at EOS)."""
        keep = [int(i) for i in ids if int(i) not in SPECIAL_IDS]
        if not keep:
            return ""
        n = self.vocab_size
        for i in keep:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} out of range for a vocabulary of {n}")
        return self._sp.decode(keep)

    def pieces(self, text: str) -> list[str]:
        """The subword pieces of ``text`` (``▁`` marks a preceding space)."""
        return self._sp.encode(text, out_type=str)

    def id_to_piece(self, i: int) -> str:
        """The piece string of id ``i``."""
        return self._sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece`` (UNK_ID when unknown)."""
        return self._sp.piece_to_id(piece)

    def __repr__(self) -> str:
        return f"SpmTokenizer(vocab_size={self.vocab_size}, fingerprint={self.fingerprint})"


class TokenizerPair:
    """Source and target tokenizers; ``joint`` when both sides share one model (same object)."""

    def __init__(self, src: SpmTokenizer, tgt: Optional[SpmTokenizer] = None) -> None:
        """``tgt=None`` (or the same object as ``src``) makes a joint pair."""
        self.src = src
        self.tgt = src if tgt is None else tgt

    @property
    def joint(self) -> bool:
        """True when source and target use the same model object."""
        return self.src is self.tgt

    @property
    def fingerprint(self) -> str:
        """One fingerprint (joint) or ``"SRC:TGT"`` (separate vocabularies)."""
        if self.joint:
            return self.src.fingerprint
        return f"{self.src.fingerprint}:{self.tgt.fingerprint}"

    @classmethod
    def build(cls, cfg: TokenizerConfig, src_texts: Sequence[str], tgt_texts: Sequence[str]) -> TokenizerPair:
        """Load the models named in ``cfg`` or train new ones on the given texts.

        With ``cfg.model`` set: joint loads it for both sides; separate loads ``cfg.model`` (source)
        and ``cfg.tgt_model`` (target). Otherwise joint trains one model on source + target texts,
        separate trains one per side (the source side with ``src_model_type``/``src_vocab_size``
        when given).
        """
        if cfg.tgt_model and cfg.joint:
            raise DataError(
                "tokenizer.tgt_model is only used with tokenizer.joint=false "
                "(a joint vocabulary has a single tokenizer.model)"
            )
        if cfg.model or cfg.tgt_model:
            if not cfg.model:
                raise DataError("tokenizer.tgt_model is set but tokenizer.model is not; give both")
            src = SpmTokenizer.load(cfg.model)
            if cfg.joint:
                return cls(src)
            if not cfg.tgt_model:
                raise DataError(
                    "tokenizer.joint=false with tokenizer.model needs tokenizer.tgt_model too "
                    "(the target-side model); or set tokenizer.joint=true"
                )
            return cls(src, SpmTokenizer.load(cfg.tgt_model))

        def train(texts: Iterable[str], model_type: str, vocab_size: int) -> SpmTokenizer:
            return SpmTokenizer.train(
                texts,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=cfg.character_coverage,
                max_sentences=cfg.max_sentences,
                lowercase=cfg.lowercase,
            )

        if cfg.joint:
            return cls(train(itertools.chain(src_texts, tgt_texts), cfg.model_type, cfg.vocab_size))
        src_type = cfg.src_model_type or cfg.model_type
        src_size = cfg.src_vocab_size or cfg.vocab_size
        return cls(train(src_texts, src_type, src_size), train(tgt_texts, cfg.model_type, cfg.vocab_size))

    def save(self, directory: PathLike) -> None:
        """Write ``spm.model`` (joint) or ``src.spm.model`` + ``tgt.spm.model`` into ``directory``.

        Files of the other layout are removed so that :meth:`load` is never ambiguous.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.joint:
            self.src.save(d / JOINT_FILE)
            stale = (SRC_FILE, TGT_FILE)
        else:
            self.src.save(d / SRC_FILE)
            self.tgt.save(d / TGT_FILE)
            stale = (JOINT_FILE,)
        for name in stale:
            (d / name).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: PathLike) -> TokenizerPair:
        """Read what :meth:`save` wrote. Raises DataError naming the expected files if absent."""
        d = Path(directory)
        joint, src, tgt = d / JOINT_FILE, d / SRC_FILE, d / TGT_FILE
        if joint.is_file():
            if src.exists() or tgt.exists():
                raise DataError(f"{d} has both {JOINT_FILE} and {SRC_FILE}/{TGT_FILE}; keep one layout")
            return cls(SpmTokenizer.load(joint))
        if src.is_file() and tgt.is_file():
            return cls(SpmTokenizer.load(src), SpmTokenizer.load(tgt))
        if src.is_file() or tgt.is_file():
            missing = tgt if src.is_file() else src
            raise DataError(f"tokenizer file missing: {missing} (separate vocabularies need both)")
        raise DataError(
            f"no tokenizer in {d}: expected {JOINT_FILE} (joint vocabulary) "
            f"or {SRC_FILE} + {TGT_FILE} (separate vocabularies)"
        )

    def __repr__(self) -> str:
        if self.joint:
            return f"TokenizerPair(joint, {self.src!r})"
        return f"TokenizerPair(src={self.src!r}, tgt={self.tgt!r})"
