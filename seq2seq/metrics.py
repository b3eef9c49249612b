"""Corpus metrics through sacreBLEU (BLEU, chrF, with signatures) and exact match."""

from __future__ import annotations

from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF


@dataclass
class Score:
    name: str
    score: float
    signature: str
    detail: str  # sacreBLEU's formatted line (e.g. "BLEU = 38.1 70.2/45.3/...")

    def __str__(self) -> str:
        return f"{self.detail} (signature: {self.signature})"


def bleu(hypotheses: list[str], references: list[str], *, tokenize: str = "13a", lowercase: bool = False) -> Score:
    """Corpus BLEU of detokenized hypotheses against one reference each.

    The default is sacreBLEU's standard: detokenized, cased, 13a tokenization.
    ``lowercase=True`` gives the "tokenized lowercase" figure that older papers report.
    """
    _check_lengths(hypotheses, references)
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    result = metric.corpus_score(hypotheses, [references])
    return Score("BLEU", result.score, str(metric.get_signature()), result.format(width=1))


def chrf(hypotheses: list[str], references: list[str]) -> Score:
    """Corpus chrF (character n-gram F-score, sacreBLEU defaults)."""
    _check_lengths(hypotheses, references)
    metric = CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return Score("chrF", result.score, str(metric.get_signature()), result.format(width=1))


def exact_match(hypotheses: list[str], references: list[str]) -> float:
    """Percentage of hypotheses equal to their reference (after stripping outer whitespace)."""
    _check_lengths(hypotheses, references)
    if not references:
        return 0.0
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * hits / len(references)


def _check_lengths(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
