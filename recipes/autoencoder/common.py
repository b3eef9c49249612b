"""Shared helpers of the autoencoder recipe scripts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from seq2seq.config import load_config
from seq2seq.train.trainer import Trainer


def train_or_reuse(config: Path, output_dir: Path, overrides: list[str]) -> float:
    """Train ``config`` into ``output_dir`` unless a finished run is there; training seconds."""
    log = output_dir / "train_log.jsonl"
    if not (output_dir / "best").is_dir() or not log.is_file() or '"event": "end"' not in log.read_text():
        if output_dir.exists():
            shutil.rmtree(output_dir)  # an unfinished run: start again
        cfg = load_config(config, [*overrides, f"train.output_dir={output_dir}", "train.progress=false"])
        Trainer(cfg).fit()
    end = [json.loads(line) for line in log.read_text().splitlines() if '"event": "end"' in line][-1]
    return float(end["seconds"])


def reconstruction_metrics(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Exact match (%) and word-level token accuracy (%): the share of reference words
    reproduced at their own position (a missing or extra word costs its position)."""
    exact = sum(h == r for h, r in zip(hypotheses, references))
    right = total = 0
    for h, r in zip(hypotheses, references):
        hw, rw = h.split(), r.split()
        right += sum(a == b for a, b in zip(hw, rw))
        total += max(len(hw), len(rw))
    return {"exact_match": 100.0 * exact / max(1, len(references)), "token_accuracy": 100.0 * right / max(1, total)}
