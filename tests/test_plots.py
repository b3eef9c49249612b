"""seq2seq plot: learning curves as a PNG of the expected size."""

from __future__ import annotations

import json

import pytest

from seq2seq.cli import main

pytest.importorskip("matplotlib")


def write_log(path, bleu_offset: float) -> None:
    records = [{"event": "start", "step": 0}]
    for step in range(10, 110, 10):
        records.append({"event": "train", "step": step, "loss": 5.0 / step ** 0.3, "lr": 1e-3 * min(1, step / 50)})
        if step % 50 == 0:
            records.append({"event": "valid", "step": step, "valid_loss": 4.0 / step ** 0.2,
                            "valid_bleu": bleu_offset + step / 10})
    path.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"event": "train", "st'  # a line cut short by a crash
    (path / "train_log.jsonl").write_text(text)


def test_plot_writes_a_png_of_the_expected_size(tmp_path, capsys):
    import matplotlib.pyplot as plt

    write_log(tmp_path / "run_a", 10.0)
    write_log(tmp_path / "run_b", 12.0)
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "run_a"), str(tmp_path / "run_b" / "train_log.jsonl"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.imread(out).shape[:2] == (700, 1000)  # 10 x 7 inches at 100 dpi
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_plot_of_a_directory_without_a_log_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no training log here" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
