"""Hostile input to every command: a one-line error or a correct result, never a traceback.

Every command that reads user input gets empty files, empty and whitespace-only lines, invalid
UTF-8, NUL bytes, a BOM, CRLF, a 100,000-character line, control characters, mixed scripts,
mismatched parallel files, missing/unreadable files, bad configs and checkpoints of another
format. The contract (docs/reliability.md):

- either exit status 2 and exactly one ``seq2seq: error: ...`` line that names the file (and
  the line, where there is one) or the option, with a pre-existing output file left untouched;
- or exit status 0 with a correct result (warnings allowed): per-line commands turn N input
  lines into exactly N output lines (rows), in order;
- never a Python traceback, never a hang.

The models are tiny and trained for a couple of updates: behaviour under bad input does not
need a good model. Everything runs in-process except two subprocess runs of ``python -m
seq2seq`` (real exit status and stderr, with a timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from seq2seq.cli import main
from seq2seq.infer.hashing import CodeIndex

LETTERS = "a b c d e f g h".split()
PRECIOUS = b"precious: must survive a failed run\n"
LONG_LINE = "a b " * 25_000  # 100,000 characters, 50,000 words: far over max_positions

MODEL = (
    "model: {{encoder: {enc}, decoder: {dec}, d_model: 8, context_dim: 8, heads: 2, ffn_dim: 16, "
    "enc_layers: 1, dec_layers: 1, dropout: 0.0, max_positions: 64{extra}}}\n"
)


def train_section(out: Path) -> str:
    return (
        f"train: {{output_dir: {out}, precision: fp32, device: cpu, max_tokens: 256, max_steps: 2, "
        "max_epochs: 1, valid_every: 0, valid_bleu: false, progress: false, keep_last: 0, "
        "log_every: 100, warmup_steps: 1}\n"
        "tokenizer: {model_type: word, vocab_size: 20}\n"
        "search: {beam: 2, max_len_a: 1.5, max_len_b: 3}\n"
    )


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 5))) for _ in range(n)]


@dataclass
class Env:
    """The module's checkpoints and data."""

    root: Path
    tr: Path  # translation, Transformer (position table: outputs must be capped)
    ae: Path  # autoencoder, GRU, binary codes
    cls: Path  # classifier, GRU encoder
    index: Path  # `seq2seq hash` index of the corpus with `ae`
    corpus: list[str]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    """Three tiny checkpoints trained through the CLI (about 1 s in all after imports)."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = sentences(40)
    (root / "pairs.tsv").write_text("".join(f"{s}\t{' '.join(reversed(s.split()))}\n" for s in corpus))
    (root / "mono.txt").write_text("\n".join(corpus) + "\n")
    (root / "labelled.tsv").write_text("".join(f"{s}\t{i % 2}\n" for i, s in enumerate(corpus)))
    configs = {
        "tr": (
            "train",
            "data: {format: tsv, train: pairs.tsv, valid: ''}\n",
            MODEL.format(enc="transformer", dec="transformer", extra=""),
        ),
        "ae": (
            "pretrain",
            "data: {format: text, train: mono.txt, valid: ''}\n",
            MODEL.format(enc="gru", dec="gru", extra=", bottleneck: binary"),
        ),
        "cls": (
            "classify-train",
            "data: {format: tsv, train: labelled.tsv, valid: ''}\n",
            MODEL.format(enc="gru", dec="gru", extra=""),
        ),
    }
    for name, (command, data, model) in configs.items():
        cfg = root / f"{name}.yaml"
        cfg.write_text(data.replace("{", f"{{path: {root}, ", 1) + model + train_section(root / name))
        assert main([command, str(cfg)]) == 0, name
    index = root / "index.npz"
    assert (
        main(
            [
                "hash",
                "--checkpoint",
                str(root / "ae" / "best"),
                "-i",
                str(root / "mono.txt"),
                "-o",
                str(index),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return Env(root, root / "tr" / "best", root / "ae" / "best", root / "cls" / "best", index, corpus)


# --------------------------------------------------------------------------------- helpers
@dataclass
class Result:
    rc: int
    out: str
    err: str  # stderr, then the warnings issued (as the CLI would print them)


def run(capsys, *argv: object) -> Result:
    """``seq2seq ARGV`` in-process; no traceback may appear, whatever the outcome."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    err = cap.err + "".join(f"seq2seq: warning: {w.message}\n" for w in caught)
    assert "Traceback" not in cap.out + err, err
    return Result(rc, cap.out, err)


def error_line(result: Result) -> str:
    """The one ``seq2seq: error:`` line of a failed run (exit status 2)."""
    errors = [line for line in result.err.splitlines() if line.startswith("seq2seq: error:")]
    assert result.rc == 2, (result.rc, result.err)
    assert len(errors) == 1, result.err
    return errors[0]


def rewrite_manifest(ckpt: Path) -> None:
    """Make the manifest match edited files, as if that version had written them."""
    manifest = {}
    for p in sorted(ckpt.iterdir()):
        if p.is_file() and p.name != "manifest.json":
            data = p.read_bytes()
            manifest[p.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "manifest.json").write_text(json.dumps(manifest))


def edit_config_json(ckpt: Path, edit: Callable[[dict], object]) -> None:
    """Apply EDIT to config.json's object in place (its return value is ignored)."""
    meta = json.loads((ckpt / "config.json").read_text())
    edit(meta)
    (ckpt / "config.json").write_text(json.dumps(meta))
    rewrite_manifest(ckpt)


def checkpoint_for(env: Env, command: str) -> Path:
    """The module checkpoint a command runs on."""
    return {"translate": env.tr, "evaluate": env.tr, "classify": env.cls}.get(command, env.ae)


def per_line_argv(env: Env, command: str, inp: Path, out: Path, ckpt: Path | None = None) -> list[object]:
    """``seq2seq COMMAND`` reading INP and writing OUT (with CKPT, or the command's checkpoint)."""
    argv: list[object] = [command, "--checkpoint", ckpt or checkpoint_for(env, command), "--device", "cpu"]
    if command == "evaluate":
        return [*argv, "--src", inp, "--ref", inp, "-o", out, "--quiet"]
    if command == "search":
        return [*argv, "--index", env.index, "-i", inp, "-o", out, "--top", "2"]
    return [*argv, "-i", inp, "-o", out, "--quiet"]


PER_LINE = ["translate", "evaluate", "reconstruct", "encode", "score", "hash", "search", "classify"]
SUFFIX = {"encode": ".npy", "hash": ".npz"}


def output_rows(command: str, out: Path) -> list:
    """The output's rows: text lines (checked to be whole lines), array rows or index lines."""
    if command == "encode":
        return list(np.load(out))
    if command == "hash":
        return CodeIndex.load(out).lines
    text = out.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert text.splitlines() == lines, "a line break inside an output line"
    return lines


# ------------------------------------------------------------- text that must be accepted
# name -> (bytes, the lines a reader sees: N in -> N out)
ACCEPTED = {
    "empty-file": (b"", []),
    "empty-lines": (b"a b\n\n\nc d\n", ["a b", "", "", "c d"]),
    "whitespace-lines": (b"a b\n   \n\t \nc d\n", ["a b", "   ", "\t ", "c d"]),
    "bom": (b"\xef\xbb\xbfa b\nc d\n", ["a b", "c d"]),
    "crlf": (b"a b\r\nc d\r\n\r\n", ["a b", "c d", ""]),
    "100k-char-line": (f"a b\n{LONG_LINE}\nc d\n".encode(), ["a b", LONG_LINE, "c d"]),
    "control-chars": (b"a\x01b \x1b[31mc\x7f\nd\x08 e\n", ["a\x01b \x1b[31mc\x7f", "d\x08 e"]),
    "mixed-scripts": (
        "a b 漢字 العربية кириллица 😀 e\u0301\n\u200fא ב\n".encode(),
        ["a b 漢字 العربية кириллица 😀 e\u0301", "\u200fא ב"],
    ),
    "line-separators": ("a\u2028b\x0bc\x0cd\rg\nh\x85i\u2029\n".encode(), ["a\u2028b\x0bc\x0cd\rg", "h\x85i\u2029"]),
    "no-final-newline": (b"a b\nc d", ["a b", "c d"]),
}


@pytest.mark.parametrize("kind", list(ACCEPTED))
@pytest.mark.parametrize("command", PER_LINE)
def test_per_line_commands_keep_n_lines_on_hostile_text(env, tmp_path, capsys, command, kind):
    data, lines = ACCEPTED[kind]
    inp = tmp_path / "in.txt"
    inp.write_bytes(data)
    out = tmp_path / f"out{SUFFIX.get(command, '.txt')}"
    result = run(capsys, *per_line_argv(env, command, inp, out))
    if command == "evaluate" and not lines:
        assert "in.txt has no lines" in error_line(result)
        return
    assert result.rc == 0, result.err
    rows = output_rows(command, out)
    if command == "search":  # one line per match: QUERY<TAB>DISTANCE<TAB>LINE<TAB>TEXT
        queries = [int(row.split("\t")[0]) for row in rows]
        assert queries == sorted(queries) and set(queries) <= set(range(1, len(lines) + 1))
        blank = {i + 1 for i, line in enumerate(lines) if not line.strip()}
        assert not blank & set(queries), "a query without tokens matched something"
        return
    assert len(rows) == len(lines), (command, kind)
    if command == "hash":
        assert rows == lines  # the index keeps the corpus lines verbatim
    for line, row in zip(lines, rows):
        if not line.strip():  # no tokens: empty output, zero vector, NaN score, no label
            if command in ("translate", "evaluate", "reconstruct", "classify"):
                assert row == ""
            elif command == "score":
                assert row.split("\t")[:3] == ["nan", "nan", "0"]
            elif command == "encode":
                assert not np.any(row)
    if kind == "100k-char-line":
        assert "truncated to the model's limit" in result.err
    if command == "score":
        assert all(len(row.split("\t")) == 3 for row in rows)  # no header line by default


# ----------------------------------------------------------- text that must be refused
REFUSED = {
    "invalid-utf8": (b"a b\nc \xff\xfe d\n", 2, "not valid UTF-8"),
    "latin1": ("a b\nc d\ncaf\xe9\n".encode("latin-1"), 3, "not valid UTF-8"),
    "nul-byte": (b"a b\nc\x00d\n", 2, "NUL byte"),
}


@pytest.mark.parametrize("kind", list(REFUSED))
@pytest.mark.parametrize("command", PER_LINE)
def test_undecodable_input_names_file_and_line_and_spares_the_output(env, tmp_path, capsys, command, kind):
    data, line, what = REFUSED[kind]
    inp = tmp_path / "bad.txt"
    inp.write_bytes(data)
    out = tmp_path / f"out{SUFFIX.get(command, '.txt')}"
    out.write_bytes(PRECIOUS)
    message = error_line(run(capsys, *per_line_argv(env, command, inp, out)))
    assert f"bad.txt:{line}:" in message and what in message
    assert out.read_bytes() == PRECIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bad.txt", out.name])  # no temporary left


@pytest.mark.parametrize("command", PER_LINE)
def test_missing_unreadable_or_directory_input(env, tmp_path, capsys, command):
    out = tmp_path / f"out{SUFFIX.get(command, '.txt')}"
    out.write_bytes(PRECIOUS)
    message = error_line(run(capsys, *per_line_argv(env, command, tmp_path / "absent.txt", out)))
    assert "absent.txt" in message and "not found" in message
    (tmp_path / "folder.txt").mkdir()
    message = error_line(run(capsys, *per_line_argv(env, command, tmp_path / "folder.txt", out)))
    assert "folder.txt is a directory" in message
    if os.geteuid() != 0:  # root reads a chmod 000 file anyway
        locked = tmp_path / "locked.txt"
        locked.write_text("a b\n")
        locked.chmod(0)
        message = error_line(run(capsys, *per_line_argv(env, command, locked, out)))
        assert "locked.txt" in message and "permission" in message.lower()
    assert out.read_bytes() == PRECIOUS


@pytest.mark.parametrize("command", PER_LINE)
def test_unwritable_output(env, tmp_path, capsys, command):
    inp = tmp_path / "in.txt"
    inp.write_text("a b\n")
    (tmp_path / "dir.out").mkdir()
    message = error_line(run(capsys, *per_line_argv(env, command, inp, tmp_path / "dir.out")))
    assert "dir.out" in message and "directory" in message
    message = error_line(run(capsys, *per_line_argv(env, command, inp, tmp_path / "no" / "such" / "out")))
    assert "no/such/out" in message
    assert not (tmp_path / "no").exists()


def test_long_lines_and_huge_length_limits_are_capped(env, tmp_path, capsys):
    """A Transformer cannot decode past its position table, a GRU could decode for ever: outputs
    stop at max_positions - 1 tokens, with a warning, whatever --max-len-a asks."""
    inp = tmp_path / "in.txt"
    inp.write_text(f"a b\n{LONG_LINE}\n\nc d\n")
    for ckpt, command in ((env.tr, "translate"), (env.ae, "reconstruct")):
        out = tmp_path / f"{command}.txt"
        result = run(
            capsys,
            command,
            "--checkpoint",
            ckpt,
            "-i",
            inp,
            "-o",
            out,
            "--max-len-a",
            "1e6",
            "--beam",
            "2",
            "--device",
            "cpu",
            "--quiet",
        )
        assert result.rc == 0, result.err
        rows = output_rows(command, out)
        assert len(rows) == 4 and rows[2] == ""
        assert all(len(row.split()) <= 63 for row in rows)


def test_score_header_is_opt_in(env, tmp_path, capsys):
    inp = tmp_path / "in.txt"
    inp.write_text("a b\n\nc d\n")
    out = tmp_path / "s.tsv"
    assert run(capsys, "score", "--checkpoint", env.ae, "-i", inp, "-o", out, "--quiet").rc == 0
    assert len(output_rows("score", out)) == 3
    assert (
        run(capsys, "score", "--checkpoint", env.ae, "-i", inp, "-o", out, "--quiet", "--header", "--threshold", "2").rc
        == 0
    )
    rows = output_rows("score", out)
    assert rows[0] == "per_token\ttotal\ttokens\tflag" and len(rows) == 4


def test_score_percentile_of_only_empty_lines_keeps_the_flag_column(env, tmp_path, capsys):
    inp = tmp_path / "blank.txt"
    inp.write_text("\n   \n")
    out = tmp_path / "s.tsv"
    result = run(capsys, "score", "--checkpoint", env.ae, "-i", inp, "-o", out, "--quiet", "--percentile", "50")
    assert result.rc == 0 and "none is flagged" in result.err
    assert output_rows("score", out) == ["nan\tnan\t0\t0"] * 2


def test_search_output_lines_never_break_inside(env, tmp_path, capsys):
    """Corpus lines with line separators, CR, VT/FF... come back on one output line each."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\u2028c\nd\re f\n\x0bg\x0ch\x85\n\u2029a\x1cb\n", encoding="utf-8")
    index = tmp_path / "i.npz"
    assert run(capsys, "hash", "--checkpoint", env.ae, "-i", corpus, "-o", index, "--quiet").rc == 0
    query = tmp_path / "q.txt"
    query.write_text("a b\n")
    out = tmp_path / "hits.tsv"
    assert run(capsys, "search", "--checkpoint", env.ae, "--index", index, "-i", query, "-o", out, "--top", "4").rc == 0
    rows = output_rows("search", out)  # checks that splitlines() sees the same lines
    assert len(rows) == 4 and sorted(int(r.split("\t")[2]) for r in rows) == [1, 2, 3, 4]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda(env, tmp_path, capsys):
    inp = tmp_path / "in.txt"
    inp.write_text("a b\n")
    for command in ("translate", "encode"):
        argv = per_line_argv(env, command, inp, tmp_path / "o.npy")
        argv[argv.index("cpu")] = "cuda:1"
        assert "CUDA is not available" in error_line(run(capsys, *argv))


def test_search_with_an_empty_index_warns(env, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    index = tmp_path / "empty.npz"
    assert run(capsys, "hash", "--checkpoint", env.ae, "-i", empty, "-o", index, "--quiet").rc == 0
    query = tmp_path / "q.txt"
    query.write_text("a b\n")
    result = run(capsys, "search", "--checkpoint", env.ae, "--index", index, "-i", query, "--top", "3")
    assert result.rc == 0 and result.out == "" and "holds no lines" in result.err
    for bad in (query, tmp_path / "absent.npz"):
        message = error_line(run(capsys, "search", "--checkpoint", env.ae, "--index", bad, "-i", query))
        assert bad.name in message


# --------------------------------------------------------------------------- parallel files
def test_mismatched_parallel_files(env, tmp_path, capsys):
    src, ref = tmp_path / "t.src", tmp_path / "t.ref"
    src.write_text("a b\nc d\ne f\n")
    ref.write_text("b a\nd c\n")
    message = error_line(run(capsys, "evaluate", "--checkpoint", env.tr, "--src", src, "--ref", ref, "--quiet"))
    assert "t.src has 3 lines" in message and "t.ref has 2" in message
    (tmp_path / "p.de").write_text("a b\nc d\ne f\n")
    (tmp_path / "p.en").write_text("b a\nd c\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{format: text, path: {tmp_path}, train: p, valid: '', src_lang: de, tgt_lang: en}}\n"
        + train_section(tmp_path / "run")
    )
    message = error_line(run(capsys, "train", cfg))
    assert "p.de has 3 lines" in message and "p.en has 2" in message


# --------------------------------------------------------------------------------- configs
BAD_CONFIGS = {
    "lr-not-a-number": ("train: {lr: abc}\n", "config key 'train.lr' must be a number"),
    "lr-nan": ("train: {lr: .nan}\n", "'train.lr' must be a finite number"),
    "section-not-a-mapping": ("model: 5\n", "section 'model' must be a mapping"),
    "top-level-list": ("- train\n- model\n", "a config must be a mapping of sections"),
    "invalid-yaml": ("train:\n  lr: [1,\n", "c.yaml:3: not valid YAML"),
    "tab-indent": ("train:\n\tlr: 1\n", "c.yaml:2: not valid YAML"),
    "unknown-key": ("train: {learning_rate: 1}\n", "unknown config key 'train.learning_rate'"),
    "unknown-section": ("trian: {lr: 1}\n", "unknown config key 'trian'"),
    "duplicate-key": (
        "train: {lr: 1}\nmodel: {}\ntrain: {lr: 2}\n",
        "c.yaml:3: not valid YAML (key 'train' is given twice",
    ),
    "invalid-utf8": (b"train:\n  output_dir: caf\xe9\n", "c.yaml:2: not valid UTF-8"),
    "nul-byte": ("train:\n  lr: 1\x00\n", "c.yaml:2: not valid YAML"),
    "zero-heads": ("model: {heads: 0}\n", "'model.heads' must be at least 1"),
    "zero-batch-rows": ("search: {batch_rows: 0}\n", "'search.batch_rows' must be at least 1"),
    "python-tag": ("train: !!python/object/apply:os.system ['true']\n", "c.yaml:1: not valid YAML"),
}


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["train", "pretrain", "classify-train"])
def test_bad_config(tmp_path, capsys, command, kind):
    text, expected = BAD_CONFIGS[kind]
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    message = error_line(run(capsys, command, cfg, "--set", f"train.output_dir={tmp_path / 'run'}"))
    assert "c.yaml" in message and expected in message, message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "pretrain", "classify-train"])
def test_missing_or_directory_config_and_bad_overrides(tmp_path, capsys, command):
    assert "config file not found" in error_line(run(capsys, command, tmp_path / "absent.yaml"))
    assert "is a directory" in error_line(run(capsys, command, tmp_path))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {seed: 1}\n")
    for override, expected in (
        ("train.lr", "must look like section.key=value"),
        ("train.lr=abc", "--set train.lr=abc: config key 'train.lr' must be a number"),
        ("train.seed.x=3", "'seed' is not a section"),
        ("model.d_model.x=3", "--set model.d_model.x=3: config key 'model.d_model' must be an integer"),
        ("nope.x=1", "--set nope.x=1: unknown config key 'nope'"),
    ):
        assert expected in error_line(run(capsys, command, cfg, "--set", override))


# ---------------------------------------------------------------------------- training data
# name -> (lines appended to 40 good ones, or the whole file as bytes; the expected error (per
# command where they differ) or None for a successful run)
TRAINING_DATA: dict[str, tuple[object, object]] = {
    "empty-file": (b"", "no lines, so nothing to train"),
    "only-blank-lines": (
        b"\n   \n\n",
        {
            "train": "only empty or blank lines (3)",
            "pretrain": "only empty or blank lines (3)",
            "classify-train": ":1: expected 'sentence<TAB>label'",
        },
    ),
    "empty-and-blank-lines": (["", "   "], None),
    "bom-and-crlf": ("BOM+CRLF", None),
    "100k-char-line": ([LONG_LINE], None),
    "control-and-mixed": (["a\x01b \x1b[31m c", "a 漢字 العربية 😀"], None),
    "invalid-utf8": ([b"c \xff d"], ":41: not valid UTF-8"),
    "nul-byte": (["c\x00d"], ":41: contains a NUL byte"),
}


def training_file(spec: object, good: list[str], suffix: str = "") -> bytes:
    """The GOOD lines, then the hostile lines of SPEC (each + SUFFIX); or SPEC itself (bytes)."""
    if isinstance(spec, bytes):
        return spec
    if spec == "BOM+CRLF":
        return ("\ufeff" + "".join(f"{s}\r\n" for s in good)).encode()
    assert isinstance(spec, list)
    extras = [e if isinstance(e, bytes) else e.encode() for e in spec]
    return b"".join(line + b"\n" for line in [s.encode() for s in good] + [e + suffix.encode() for e in extras])


@pytest.mark.parametrize("kind", list(TRAINING_DATA))
@pytest.mark.parametrize("command", ["train", "pretrain", "classify-train"])
def test_hostile_training_data(tmp_path, capsys, command, kind):
    spec, expected = TRAINING_DATA[kind]
    good = sentences(40, seed=5)
    if command == "train":  # text format: the same hostile lines on both sides stay aligned
        for lang in ("src", "tgt"):
            (tmp_path / f"d.{lang}").write_bytes(training_file(spec, good))
        data, name = "format: text, train: d", "d.src" if kind in ("invalid-utf8", "nul-byte") else "d.{src,tgt}"
    elif command == "pretrain":
        (tmp_path / "d.txt").write_bytes(training_file(spec, good))
        data, name = "format: text, train: d.txt", "d.txt"
    else:
        labelled = [f"{s}\t{i % 2}" for i, s in enumerate(good)]
        (tmp_path / "d.tsv").write_bytes(training_file(spec, labelled, "\t1"))
        data, name = "format: tsv, train: d.tsv", "d.tsv"
    if isinstance(expected, dict):
        expected = expected[command]
    cfg = tmp_path / "c.yaml"
    model = MODEL.format(enc="gru", dec="gru", extra="")
    cfg.write_text(f"data: {{{data}, path: {tmp_path}, valid: ''}}\n" + model + train_section(tmp_path / "run"))
    result = run(capsys, command, cfg)
    if expected is None:
        assert result.rc == 0, result.err
        assert (tmp_path / "run" / "best" / "manifest.json").is_file()
    else:
        message = error_line(result)
        assert name in message and str(expected) in message, message
        assert not (tmp_path / "run" / "best").exists()


# ------------------------------------------------------------------------------ checkpoints
def _format(ckpt: Path) -> None:
    edit_config_json(ckpt, lambda meta: meta.update(format=999))


def _no_vocab_size(ckpt: Path) -> None:
    edit_config_json(ckpt, lambda meta: meta.pop("src_vocab_size"))


def _config_list(ckpt: Path) -> None:
    meta = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps([meta]))
    rewrite_manifest(ckpt)


def _future_key(ckpt: Path) -> None:
    edit_config_json(ckpt, lambda meta: meta["config"]["model"].update(future_option=1))


BAD_CHECKPOINTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "format-999": (_format, "checkpoint format 999"),
    "unknown-config-key": (_future_key, "model.future_option"),
    "config-json-a-list": (_config_list, "not a JSON object"),
    "no-vocab-size": (_no_vocab_size, "src_vocab_size"),
    "missing-weights": (lambda c: (c / "model.safetensors").unlink(), "missing model.safetensors"),
    "missing-config": (lambda c: (c / "config.json").unlink(), "missing config.json"),
    "corrupted-weights": (lambda c: (c / "model.safetensors").write_bytes(b"\x00" * 64), "model.safetensors"),
    "empty-directory": (lambda c: [p.unlink() for p in c.iterdir()], "is incomplete"),
    "a-file": (lambda c: (shutil.rmtree(c), c.write_text("not a checkpoint\n")), "is not a directory"),
}
CHECKPOINT_COMMANDS = [
    "translate",
    "evaluate",
    "reconstruct",
    "encode",
    "score",
    "hash",
    "search",
    "classify",
    "sample",
    "join-encoder",
    "join-decoder",
]


@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
@pytest.mark.parametrize("command", CHECKPOINT_COMMANDS)
def test_incompatible_or_broken_checkpoint(env, tmp_path, capsys, command, kind):
    mutate, expected = BAD_CHECKPOINTS[kind]
    source = env.tr if command.startswith("join") else checkpoint_for(env, command)
    ckpt = tmp_path / "ckpt"
    shutil.copytree(source, ckpt)
    mutate(ckpt)
    inp = tmp_path / "in.txt"
    inp.write_text("a b\n")
    out = tmp_path / "out.txt"
    out.write_bytes(PRECIOUS)
    if command == "sample":
        argv: list[object] = ["sample", "--checkpoint", ckpt, "-o", out, "--device", "cpu"]
    elif command == "join-encoder":
        argv = ["join", "--encoder", ckpt, "--decoder", env.tr, "-o", tmp_path / "joined"]
    elif command == "join-decoder":
        argv = ["join", "--encoder", env.tr, "--decoder", ckpt, "-o", tmp_path / "joined"]
    else:
        argv = per_line_argv(env, command, inp, out, ckpt)
    message = error_line(run(capsys, *argv))
    assert str(ckpt) in message and expected in message, message
    assert out.read_bytes() == PRECIOUS and not (tmp_path / "joined").exists()


def test_join_never_replaces_what_is_not_a_checkpoint(env, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_bytes(PRECIOUS)
    message = error_line(run(capsys, "join", "--encoder", env.tr, "--decoder", env.tr, "-o", existing))
    assert "notes.txt exists and is not a directory" in message and existing.read_bytes() == PRECIOUS
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(PRECIOUS)
    message = error_line(run(capsys, "join", "--encoder", env.tr, "--decoder", env.tr, "-o", folder))
    assert "not a checkpoint" in message and (folder / "notes.txt").read_bytes() == PRECIOUS
    message = error_line(run(capsys, "join", "--encoder", env.cls, "--decoder", env.tr, "-o", tmp_path / "j"))
    assert "is a classifier checkpoint" in message
    assert run(capsys, "join", "--encoder", env.tr, "--decoder", env.tr, "-o", tmp_path / "j").rc == 0


# ----------------------------------------------------------------------------- option values
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["translate", "--beam", "0"], "--beam must be at least 1"),
        (["translate", "--beam", "-3"], "--beam must be at least 1"),
        (["translate", "--batch-tokens", "-5"], "--batch-tokens must be at least 1"),
        (["translate", "--batch-rows", "0"], "--batch-rows must be at least 1"),
        (["translate", "--quantize", "int8", "--precision", "bf16"], "cannot be combined with --precision bf16"),
        (["translate", "--max-len-a", "-1"], "--max-len-a must be >= 0"),
        (["translate", "--max-len-a", "nan"], "--max-len-a must be a finite number"),
        (["translate", "--length-penalty", "inf"], "--length-penalty must be a finite number"),
        (["translate", "--min-len", "-1"], "--min-len must be >= 0"),
        (["reconstruct", "--batch-rows", "0"], "--batch-rows must be at least 1"),
        (["translate", "--nbest", "0"], "--nbest must be at least 1"),
        (["translate", "--nbest", "3"], "--nbest (3) cannot exceed the checkpoint's beam (2)"),
        (["translate", "--device", "bogus"], "unknown device 'bogus'"),
        (["reconstruct", "--beam", "0"], "--beam must be at least 1"),
        (["score", "--threshold", "nan"], "--threshold must be a finite number"),
        (["score", "--percentile", "100"], "--percentile must be between 0 and 100"),
        (["search", "--top", "0"], "--top must be at least 1"),
        (["search", "--radius", "-1"], "--radius must be >= 0"),
        (["sample", "--max-len", "0"], "--max-len must be at least 1"),
        (["sample", "-n", "0"], "-n must be at least 1"),
        (["sample", "--interpolate", "", "a b"], "two non-empty sentences"),
    ],
)
def test_bad_option_values(env, tmp_path, capsys, argv, expected):
    inp = tmp_path / "in.txt"
    inp.write_text("a b\n")
    extra: list[object] = ["--checkpoint", checkpoint_for(env, argv[0])]
    if argv[0] != "sample":
        extra += ["-i", inp]
    if argv[0] == "search":
        extra += ["--index", env.index]
    assert expected in error_line(run(capsys, *argv, *extra))


def test_an_unexpected_exception_is_one_line_with_status_1(env, capsys, monkeypatch):
    def broken(args):
        raise ValueError("something nobody foresaw\nsecond line")

    monkeypatch.setattr("seq2seq.cli.translate.cmd_translate", broken)
    result = run(capsys, "translate", "--checkpoint", env.tr, "-i", os.devnull)
    assert result.rc == 1
    assert result.err.strip() == (
        "seq2seq: error: unexpected ValueError: something nobody foresaw (a bug in "
        "seq2seq: rerun with -v for the traceback and please report it)"
    )


# ------------------------------------------------------------------------- real processes
def python_m_seq2seq(*argv: object, stdin: bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "seq2seq", *map(str, argv)], input=stdin, capture_output=True, timeout=120, env=env
    )


def test_subprocess_translate_hostile_stdin_keeps_lines_and_never_hangs(env):
    lines = [b"a b", b"", b"   ", LONG_LINE.encode(), b"c\x01d \x1b[0m", "漢字 😀 a\u2028b".encode(), b"e f\r"]
    proc = python_m_seq2seq(
        "translate",
        "--checkpoint",
        env.tr,
        "--device",
        "cpu",
        "--quiet",
        stdin=b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n",
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    out = proc.stdout.decode("utf-8")
    assert len(out.split("\n")) - 1 == len(lines) == len(out.splitlines())
    assert out.split("\n")[1:3] == ["", ""]
    assert "seq2seq: warning:" in stderr and "truncated" in stderr


def test_subprocess_invalid_utf8_on_stdin_is_one_line_status_2(env):
    proc = python_m_seq2seq(
        "translate", "--checkpoint", env.tr, "--device", "cpu", "--quiet", stdin=b"a b\n\xc3\x28 broken\n"
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b""
    assert stderr.startswith("seq2seq: error: <stdin>:2: not valid UTF-8") and stderr.count("\n") == 1, stderr
