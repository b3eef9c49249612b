"""Learning curves of training runs as a PNG (``seq2seq plot``); needs matplotlib (``pip install seq2seq[plot]``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from seq2seq.errors import Seq2SeqError

# (panel title, event, record key): the first valid metric found is shown in the third panel.
PANELS = [
    ("training loss (per token)", "train", "loss"),
    ("validation loss", "valid", "valid_loss"),
    ("validation metric", "valid", None),
    ("learning rate", "train", "lr"),
]
METRICS = ["valid_bleu", "valid_accuracy", "valid_exact_match", "valid_context_accuracy"]


def pyplot(needed_by: str) -> Any:
    """``matplotlib.pyplot`` drawing to files (the Agg backend, no display needed); a
    Seq2SeqError saying that ``needed_by`` needs matplotlib when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise Seq2SeqError(f"{needed_by} needs matplotlib: pip install matplotlib (or seq2seq[plot])") from None
    return plt


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``train_log.jsonl``; a line cut short by a crash is skipped."""
    if path.is_dir():
        path = path / "train_log.jsonl"
    if not path.is_file():
        raise Seq2SeqError(f"{path}: no training log here (give a run's output_dir or its train_log.jsonl)")
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
            records.append(record)
    return records


def plot_learning_curves(
    runs: list[Path], output: Path, width: float = 10.0, height: float = 7.0, dpi: int = 100
) -> Path:
    """One PNG with four panels (training loss, validation loss, validation BLEU/accuracy,
    learning rate) against updates, one line per run; written atomically to ``output``."""
    plt = pyplot("seq2seq plot")
    logs = {str(run): read_log(Path(run)) for run in runs}
    metric = next((m for m in METRICS if any(m in r for records in logs.values() for r in records)), None)
    fig, axes = plt.subplots(2, 2, figsize=(width, height), dpi=dpi)
    for ax, (title, event, key) in zip(axes.flat, PANELS):
        if key is None and metric:  # e.g. valid_bleu -> "validation bleu"
            key, title = metric, "validation " + metric[len("valid_") :].replace("_", " ").replace("bleu", "BLEU")
        ax.set_title(title)
        ax.set_xlabel("update")
        for name, records in logs.items():
            points = [
                (r["step"], r[key]) for r in records if r.get("event") == event and key and r.get(key) is not None
            ]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if event == "valid" else None, markersize=3, label=Path(name).name)
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, output)
    except OSError as e:
        raise Seq2SeqError(f"cannot write {output}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return output
