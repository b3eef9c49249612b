"""Streaming translation (issue 18): windows, first output before the input ends, resume after
an interrupted run, shards joined back in order, --strict with a file output.

The library tests use a model that copies its source (exact: every output is known); the CLI
tests a tiny Transformer trained for two updates, decoded with ``--batch-rows`` equal to the beam
(one sentence per batch), so that a line's output never depends on which lines share its window
or batch and runs cut into windows, shards or resumed pieces can be compared byte for byte.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import select
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from seq2seq.cli import main
from seq2seq.cli.inputs import InputWindows, _pipe_line_chunks
from seq2seq.cli.output import WindowOutput
from seq2seq.cli.shards import shard_output
from seq2seq.config import SearchConfig
from seq2seq.data.tokenizer import EOS_ID, SpmTokenizer, TokenizerPair
from seq2seq.errors import DataError, Seq2SeqError
from seq2seq.infer.translator import Translator, line_windows
from seq2seq.models import Seq2SeqModel
from seq2seq.models.types import Decoder, Encoded, Encoder

LETTERS = "a b c d e f g h".split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


# ------------------------------------------------------------------ a model that copies its input
class CopyEncoder(Encoder):
    d_model = context_dim = 1

    def forward(self, src: Tensor, src_mask: Tensor) -> Encoded:
        states = src.unsqueeze(-1).double().masked_fill(~src_mask.unsqueeze(-1), 0.0)
        return Encoded(states=states, mask=src_mask, context=states.new_zeros(src.size(0), 1))


class CopyDecoder(Decoder):
    """Outputs its source, then EOS, with a wide margin (as in test_properties.py)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def init_state(self, encoded: Encoded) -> dict[str, Any]:
        return {"t": torch.zeros(encoded.mask.size(0), dtype=torch.long)}

    def step(self, tokens: Tensor, encoded: Encoded, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        t = state["t"]
        src = encoded.states[..., 0].long()
        ended = t >= encoded.mask.sum(1)
        at = src.gather(1, t.clamp(max=src.size(1) - 1).unsqueeze(1)).squeeze(1)
        nxt = torch.where(ended, torch.full_like(at, EOS_ID), at)
        logits = torch.full((t.numel(), self.vocab_size), -5.0)
        logits[:, EOS_ID] = torch.where(ended, -5.0, -30.0)
        logits[torch.arange(t.numel()), nxt] = 5.0
        return logits, {"t": t + 1}

    def forward(self, tgt_in: Tensor, encoded: Encoded) -> Tensor:
        raise NotImplementedError("search only")


@pytest.fixture(scope="module")
def copier() -> Translator:
    tok = SpmTokenizer.train(sentences(200), vocab_size=20, model_type="word")
    model = Seq2SeqModel(CopyEncoder(), CopyDecoder(tok.vocab_size))
    return Translator(
        model,
        TokenizerPair(tok),
        SearchConfig(beam=2, batch_rows=8, batch_tokens=40),
        max_src_tokens=6,
        max_output_tokens=10,
        source_limits={"max_tokens": 5},
    )


def test_translate_stream_keeps_order_and_reads_lazily(copier):
    lines = sentences(57, seed=1)
    lines[3] = lines[30] = ""
    lines[11] = "   "
    expected = copier.translate(lines)
    assert expected[:2] == lines[:2] and expected[3] == ""
    for window in (1, 4, 10, 1000):
        assert list(copier.translate_stream(lines, window=window)) == expected
    pulled: list[int] = []

    def source():
        for i, line in enumerate(lines):
            pulled.append(i)
            yield line

    stream = copier.translate_stream(source(), window=10)
    assert next(stream) == expected[0]
    assert len(pulled) == 10  # one window read, not the whole input
    assert [h[0][0] for w in copier.translate_windows(line_windows(lines, 20)) for h in w] == expected
    nbest = [h for w in copier.translate_windows(line_windows(lines, 20), nbest=2) for h in w]
    assert [h[0][0] for h in nbest] == expected and len(nbest) == len(lines)


def test_stream_warns_once_at_the_end_with_input_line_numbers(copier):
    lines = sentences(25, seed=2)
    lines[4] = "a b z"  # z: not in the vocabulary (line 5)
    lines[17] = "a b c d e f"  # longer than any training source (line 18)
    lines[21] = "a b c d e f g h a b"  # also longer than max_src_tokens: truncated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = list(copier.translate_stream(lines, window=4))
    messages = [str(w.message) for w in caught]
    assert len(out) == 25 and len(messages) == 2, messages
    assert messages[0].startswith("3 of 25 input line(s) are outside what the model was trained on")
    assert "(read as <unk>): line 5;" in messages[0] and "(at most 5 tokens): lines 18, 22" in messages[0]
    assert messages[1] == "1 input line(s) longer than 6 subword tokens were truncated to the model's limit"
    stream = copier.translate_windows(line_windows(lines, 4), strict=True)
    assert len(next(stream)) == 4  # lines 1-4 are fine
    with pytest.raises(DataError, match=r"1 of 8 input line\(s\) .*line 5\. Nothing from line 5 on was translated"):
        next(stream)
    with pytest.raises(DataError, match="Nothing was translated"):
        next(copier.translate_windows(line_windows(lines, 10), strict=True))
    report = copier.check_windows(line_windows(lines, 3), first_line=100)
    assert len(report.lines) == 3 and list(report.too_long) == [117, 121]


def test_out_of_domain_report_stays_small():
    from seq2seq.data.domain import OutOfDomain
    from seq2seq.infer.translator import StreamOutOfDomain

    report = StreamOutOfDomain(total=0, limits={"max_tokens": 5})
    for start in range(0, 1_000_000, 1000):
        report.add(
            OutOfDomain(total=1000, unknown_characters=list(range(1000)), too_long=list(range(0, 1000, 2))), start
        )
    assert len(report.lines) == 1_000_000 and len(report.too_long) == 500_000
    assert len(report.unknown_characters.first) == 100
    assert report.summary().startswith("1000000 of 1000000 input line(s)")
    assert "lines 1, 3, 5, 7, 9, 11, 13, 15, 17, 19 (and 499990 more)" in report.summary()


# ------------------------------------------------------------------ reading input in windows
def test_pipe_windows_end_where_the_input_pauses():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as r, os.fdopen(write_end, "wb", buffering=0) as w:
        windows = iter(InputWindows.from_stream(r, "<pipe>", size=100))
        w.write(b"\xef\xbb\xbfa b\r\nc d\n")
        assert next(windows) == ["a b", "c d"]  # not waiting for 100 lines
        w.write(b"e\n" * 250 + b"f")
        w.close()
        rest = list(windows)
    assert [len(x) for x in rest] == [100, 100, 51] and rest[-1][-2:] == ["e", "f"]


def test_stream_reader_matches_the_file_reader(tmp_path):
    from seq2seq.data.textio import read_lines

    data = "\ufeffa b\r\n\n  \nc\rd\u2028e\nlast\r".encode() * 3
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    expected = read_lines(path)
    for size in (1, 2, 50):
        assert [x for w in InputWindows(str(path), size) for x in w] == expected
        streamed = [x for w in InputWindows.from_stream(io.BytesIO(data), "<bytes>", size) for x in w]
        assert streamed == expected
    assert [x for w in InputWindows(str(path), 2, start=3, stop=7) for x in w] == expected[3:7]
    packed = gzip.compress(data[:20]) + gzip.compress(data[20:])  # two gzip members, as `cat a.gz b.gz`
    assert [x for lines, _ in _pipe_line_chunks(io.BytesIO(packed), "<gz>") for x in lines] == expected
    with pytest.raises(DataError, match=r"<bytes>:3: not valid UTF-8"):
        list(InputWindows.from_stream(io.BytesIO(b"a\nb\n\xff\n"), "<bytes>", 1))


# ------------------------------------------------------------------ the CLI, with a trained model
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny Transformer trained for two updates (about a second)."""
    root = tmp_path_factory.mktemp("stream")
    corpus = sentences(40)
    (root / "pairs.tsv").write_text("".join(f"{s}\t{' '.join(reversed(s.split()))}\n" for s in corpus))
    (root / "tr.yaml").write_text(
        f"data: {{path: {root}, format: tsv, train: pairs.tsv, valid: ''}}\n"
        "model: {encoder: transformer, decoder: transformer, d_model: 8, heads: 2, ffn_dim: 16, enc_layers: 1, "
        "dec_layers: 1, dropout: 0.0, max_positions: 64}\n"
        f"train: {{output_dir: {root / 'tr'}, precision: fp32, device: cpu, max_tokens: 256, max_steps: 2, "
        "max_epochs: 1, valid_every: 0, valid_bleu: false, progress: false, keep_last: 0, warmup_steps: 1}\n"
        "tokenizer: {model_type: word, vocab_size: 20}\n"
        "search: {beam: 2, max_len_a: 1.0, max_len_b: 2, batch_rows: 2}\n"  # one sentence per batch
    )
    assert main(["train", str(root / "tr.yaml")]) == 0
    return root / "tr" / "best"


def translate(ckpt: Path, *argv: object) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["translate", "--checkpoint", str(ckpt), "--device", "cpu", "--quiet", *map(str, argv)])


def python_m_seq2seq(*argv: object, **kwargs: Any) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "seq2seq", *map(str, argv)], env=env, **kwargs)


def wait_for_lines(path: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_bytes().count(b"\n") >= count):
        assert time.monotonic() < deadline, f"{path} did not get {count} lines"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(ckpt, tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """An input of 50 lines and its translation, in one window."""
    root = tmp_path_factory.mktemp("ref")
    lines = sentences(50, seed=5)
    lines[7] = lines[40] = ""
    source = root / "in.txt"
    source.write_text("\n".join(lines) + "\n")
    out = root / "out.txt"
    assert translate(ckpt, "-i", source, "-o", out) == 0
    return source, lines, out.read_text().splitlines()


def test_first_output_arrives_before_stdin_is_closed(ckpt, reference):
    _, lines, expected = reference
    proc = python_m_seq2seq(
        "translate",
        "--checkpoint",
        ckpt,
        "--device",
        "cpu",
        "--quiet",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(f"{lines[0]}\n{lines[1]}\n".encode())
        proc.stdin.flush()
        got = b""
        deadline = time.monotonic() + 120
        while got.count(b"\n") < 2:  # stdin stays open all this time
            assert select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))[0], "no output"
            got += os.read(proc.stdout.fileno(), 1 << 16)
        assert got.decode().splitlines() == expected[:2]
        rest, err = proc.communicate("".join(f"{line}\n" for line in lines[2:]).encode(), timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert (got + rest).decode().splitlines() == expected  # N lines in, N out, in order


def test_windows_shards_and_nbest_join_to_the_whole_output(ckpt, reference, tmp_path):
    source, lines, expected = reference
    small = tmp_path / "small.txt"
    assert translate(ckpt, "-i", source, "-o", small, "--window", "7") == 0
    assert small.read_text().splitlines() == expected
    for k in range(4):  # 50 lines: blocks of 12, 13, 12, 13
        assert translate(ckpt, "-i", source, "-o", tmp_path / "out.txt", "--shard", f"{k}/4") == 0
    parts = sorted(tmp_path.glob("out.txt.*-of-4"))
    assert [p.name for p in parts] == [f"out.txt.{k}-of-4" for k in range(4)]
    assert [len(p.read_text().splitlines()) for p in parts] == [12, 13, 12, 13]
    assert "".join(p.read_text() for p in parts).splitlines() == expected  # cat joins them
    whole = tmp_path / "nbest.txt"
    assert translate(ckpt, "-i", source, "-o", whole, "--nbest", "2", "--window", "9") == 0
    for k in range(2):
        assert translate(ckpt, "-i", source, "-o", tmp_path / "nb.txt", "--nbest", "2", "--shard", f"{k}/2") == 0
    joined = "".join(p.read_text() for p in sorted(tmp_path.glob("nb.txt.*-of-2")))
    assert joined == whole.read_text() and joined.splitlines()[-1].startswith("49\t")
    assert shard_output("o", (3, 12)) == "o.03-of-12" and shard_output("o", (0, 1)) == "o"


def test_shard_auto_reads_torchrun_variables(ckpt, reference, tmp_path, monkeypatch):
    source, _, expected = reference
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert translate(ckpt, "-i", source, "-o", tmp_path / "out.txt", "--shard", "auto") == 0
    assert (tmp_path / "out.txt.1-of-2").read_text().splitlines() == expected[25:]
    # a shard resumes from its own partial file, counting from the shard's first line
    (tmp_path / "out.txt.1-of-2").unlink()
    (tmp_path / "out.txt.1-of-2.partial").write_text("".join(f"{line}\n" for line in expected[25:30]))
    assert translate(ckpt, "-i", source, "-o", tmp_path / "out.txt", "--shard", "auto", "--resume") == 0
    assert (tmp_path / "out.txt.1-of-2").read_text().splitlines() == expected[25:]


@pytest.mark.parametrize("nbest", [1, 2])
def test_killed_run_resumes_to_the_same_output(ckpt, reference, tmp_path, nbest):
    """SIGKILL after the first windows (the input arrives through a pipe, so windows end where
    it pauses), a line cut in half at the end of the partial file; --resume finishes it."""
    source, lines, _ = reference
    whole = tmp_path / "whole.txt"
    assert translate(ckpt, "-i", source, "-o", whole, "--nbest", nbest) == 0
    first_30 = 30 if nbest == 1 else sum(int(row.split("\t")[0]) < 30 for row in whole.read_text().splitlines())
    out = tmp_path / "out.txt"
    partial = tmp_path / "out.txt.partial"
    proc = python_m_seq2seq(
        "translate",
        "--checkpoint",
        ckpt,
        "--device",
        "cpu",
        "--quiet",
        "-o",
        out,
        "--nbest",
        nbest,
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.stdin.write("".join(f"{line}\n" for line in lines[:30]).encode())
        proc.stdin.flush()
        wait_for_lines(partial, first_30)  # and the process waits for more input
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert not out.exists()
    with partial.open("ab") as f:
        # n-best: one line of line 30's group, then a line cut short; the group is done again
        f.write(b"30\t-1.2345\tcut\n30\t-2.5\tcut short by the cra" if nbest > 1 else b"cut short by the cra")
    assert translate(ckpt, "-i", source, "-o", out, "--nbest", nbest) == 2  # not without --resume
    assert partial.exists() and not out.exists()
    assert translate(ckpt, "-i", source, "-o", out, "--nbest", nbest, "--resume") == 0
    assert out.read_bytes() == whole.read_bytes() and not partial.exists()


def test_ctrl_c_leaves_a_partial_file_to_resume(ckpt, reference, tmp_path):
    source, lines, expected = reference
    out = tmp_path / "out.txt"
    proc = python_m_seq2seq(
        "translate",
        "--checkpoint",
        ckpt,
        "--device",
        "cpu",
        "--quiet",
        "-o",
        out,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as a terminal sends it: a test run in the background of a shell script inherits
        # SIGINT ignored (POSIX, for `cmd &`), and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        proc.stdin.write("".join(f"{line}\n" for line in lines[:20]).encode())
        proc.stdin.flush()
        wait_for_lines(tmp_path / "out.txt.partial", 20)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "20 line(s) of output are in" in err.decode() and "--resume" in err.decode()
    with open(source, "rb") as stdin:  # the rest through stdin too
        rc = python_m_seq2seq(
            "translate", "--checkpoint", ckpt, "--device", "cpu", "--quiet", "-o", out, "--resume", stdin=stdin
        ).wait(timeout=120)
    assert rc == 0 and out.read_text().splitlines() == expected


def test_resume_refuses_what_is_not_this_output(ckpt, reference, tmp_path, capsys):
    source, _, _ = reference
    out = tmp_path / "out.txt"
    partial = tmp_path / "out.txt.partial"
    partial.write_text("x\n" * 55)  # more lines than the input has
    assert translate(ckpt, "-i", source, "-o", out, "--resume") == 2
    assert "has 50 line(s), but" in capsys.readouterr().err and partial.read_text() == "x\n" * 55
    partial.write_text("5\t-0.1\tx\n")  # n-best lines that do not start at line 0
    assert translate(ckpt, "-i", source, "-o", out, "--resume", "--nbest", "2") == 2
    assert "INDEX 5 where 0 should come" in capsys.readouterr().err
    partial.write_text("")  # an empty partial file: a fresh start
    import fcntl

    with open(partial, "rb") as held:  # another process writing it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert translate(ckpt, "-i", source, "-o", out) == 2
        assert "being written by another running seq2seq" in capsys.readouterr().err
    assert translate(ckpt, "-i", source, "-o", out, "--resume") == 0 and not partial.exists()
    assert len(out.read_text().splitlines()) == 50


def test_strict_with_a_file_output_writes_nothing(ckpt, tmp_path, capsys):
    lines = [*sentences(30, seed=3), "a b 你好"]  # the bad line is in the last window
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.txt"
    out.write_text("precious\n")
    assert translate(ckpt, "-i", source, "-o", out, "--strict", "--window", "5") == 2
    err = capsys.readouterr().err
    assert "1 of 31 input line(s)" in err and "line 31." in err and "Nothing was translated (strict)" in err
    assert out.read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]
    # Through a pipe the input cannot be checked before decoding: the window is refused and
    # what earlier windows wrote is taken back.
    with open(source, "rb") as stdin:
        proc = python_m_seq2seq(
            "translate",
            "--checkpoint",
            ckpt,
            "--device",
            "cpu",
            "--quiet",
            "-o",
            out,
            "--strict",
            "--window",
            "5",
            stdin=stdin,
            stderr=subprocess.PIPE,
        )
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Nothing from line 31 on was translated" in err.decode()
    assert out.read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]


def test_strict_refusal_checks_the_whole_file_first(ckpt, tmp_path, capsys):
    lines = [*sentences(12, seed=4), "a b 你好", "a b"]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert translate(ckpt, "-i", source, "--strict", "--window", "5") == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing decoded, nothing printed
    assert "1 of 14 input line(s)" in captured.err and "line 13." in captured.err
    assert "Nothing was translated (strict)" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shard", "4/4"], "--shard 4/4: give K/N with 0 <= K < N"),
        (["--shard", "x"], "--shard x: give K/N"),
        (["--window", "0"], "--window must be at least 1"),
        (["--resume"], "--resume needs --output FILE"),
    ],
)
def test_bad_streaming_options(ckpt, tmp_path, capsys, argv, message):
    source = tmp_path / "in.txt"
    source.write_text("a b\n")
    assert translate(ckpt, "-i", source, *argv) == 2
    assert message in capsys.readouterr().err


def test_default_window_grows_with_the_token_budget():
    import argparse

    from seq2seq.cli import decoding as cli
    from seq2seq.infer import translator

    given, default = argparse.Namespace(window=7), argparse.Namespace(window=None)
    assert cli.window_size(given, SearchConfig(batch_tokens=60_000)) == 7
    assert cli.window_size(default, SearchConfig(batch_tokens=6_000)) == translator.DEFAULT_WINDOW == 12_000
    assert cli.window_size(default, SearchConfig(batch_tokens=60_000)) == 120_000


def test_shards_need_a_file_input(ckpt, capsys):
    assert translate(ckpt, "--shard", "0/2", "-i", "-") == 2
    assert "--shard needs --input FILE" in capsys.readouterr().err


def test_window_output_alone(tmp_path):
    """The writer without a model: FILE appears only when complete; an error past the first window
    keeps the partial file and says so; an error before it leaves nothing."""
    target = tmp_path / "out.txt"
    with pytest.raises(Seq2SeqError, match=r"bad line; 2 line\(s\) of output are in .*out.txt.partial"):
        with WindowOutput(str(target)) as out:
            out.write("a\nb\n", 2)
            assert not target.exists()
            raise DataError("bad line")
    assert (tmp_path / "out.txt.partial").read_text() == "a\nb\n"
    with WindowOutput(str(target), resume=True) as out:
        assert out.done == 2
        out.write("c\n", 1)
    assert target.read_text() == "a\nb\nc\n" and not (tmp_path / "out.txt.partial").exists()
    with pytest.raises(DataError), WindowOutput(str(tmp_path / "other.txt")):
        raise DataError("at once")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with WindowOutput(str(tmp_path / "hidden.txt"), resumable=False) as out:
        out.write("x\n", 1)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".hidden.txt.tmp-")]
    assert (tmp_path / "hidden.txt").read_text() == "x\n"
