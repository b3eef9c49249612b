"""Training start-up and memory against corpus size (issue 18). A script that prints figures,
not a test.

For each size it writes a synthetic de-en corpus (Multi30k's training pairs repeated and
shuffled: the same sentences, so the same lengths and speed, at any size), then:

1. ``seq2seq prepare``: the token store is built (its wall time and peak RSS);
2. ``seq2seq train``, the store built: a tiny Transformer (d_model 64, 1+1 layers, fp32,
   ``train.threads`` 2), 20 updates of 4,096-token batches, no validation. Figures: the
   training process's peak RSS (``wait4``), the time from launch to the first update (the
   first ``train`` record appearing in ``train_log.jsonl``, polled every 10 ms), the whole run's
   wall time, and training tokens/s (mean of the logged rates after update 5).

``--ranks 2`` also runs step 2 as two DDP processes on this machine (``torchrun --standalone``,
gloo on CPU, one thread each) and reports each rank's peak RSS and their sum, against the
single process's: the store is shared through the page cache, so the sum should stay below
twice one process's peak (each rank reads only its own batches).

**fairseq-preprocess on the same files** (issue 18's store-building target: at least 1.0x its
throughput with the same number of workers). With fairseq installed (``--fairseq VENV``, by
default ``$PEERS_ROOT/fairseq`` as ``benchmarks/peers/install_fairseq.sh`` makes it; skipped
with a printed line when absent), each size's corpus is also

3. encoded into SentencePiece pieces with the same model (fairseq reads pre-tokenized text):
   ``SentencePieceProcessor.encode`` in blocks of 10,000 lines with ``num_threads`` = the
   workers, in a process of its own, pieces written space-separated as
   ``benchmarks/peers/prepare_data.sh`` writes them;
4. binarized by ``fairseq-preprocess --srcdict D --tgtdict D --workers W`` (the dictionary of the
   SentencePiece model's pieces, so no dictionary is counted, as ours is given too), W = the
   number of processes our build encodes with (one per core).

The ratio is our ``prepare``'s throughput (pairs/s, whole command, imports and store build,
which includes the SentencePiece encoding) over fairseq's, against ``fairseq-preprocess``
alone and against the encoding plus ``fairseq-preprocess`` (the like-for-like one: both start
from raw text). Wall times and CPU seconds (user + system of the command and its workers,
``wait4``) are printed; ``--repeat R`` alternates ours and fairseq's R times per size (the best
wall time of each is kept) and ``--build-only`` skips training.

``--compare TREE`` runs step 2 with another checkout of seq2seq on ``PYTHONPATH`` as well (for
example the commit before the store, exported with ``git archive COMMIT | tar -x -C TREE``),
at the sizes of ``--compare-sizes``: that code reads the whole corpus into memory, so keep them
small. A SentencePiece model is trained once on the Multi30k text when ``--spm`` is not given.

    python benchmarks/corpus_scale.py --sizes 100000 1000000 5000000
    python benchmarks/corpus_scale.py --sizes 100000 1000000 --compare /tmp/seq2seq-before
    python benchmarks/corpus_scale.py --sizes 100000 5000000 --ranks 2
    python benchmarks/corpus_scale.py --sizes 100000 1000000 --build-only --repeat 2

Watch the disk: 5M pairs take about 1.1 GB of text and store (``df -h`` of ``--work-dir``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]


def write_corpus(data: Path, work: Path, pairs: int, seed: int = 1) -> Path:
    """``work/cN.{de,en}``: Multi30k's training pairs, shuffled, repeated to ``pairs`` lines."""
    prefix = work / f"c{pairs}"
    if Path(f"{prefix}.de").is_file() and Path(f"{prefix}.en").is_file():
        return prefix
    src = (data / "train.de").read_text(encoding="utf-8").splitlines()
    tgt = (data / "train.en").read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    order = list(range(len(src)))
    with open(f"{prefix}.de.tmp", "w", encoding="utf-8") as fs, open(f"{prefix}.en.tmp", "w", encoding="utf-8") as ft:
        written = 0
        while written < pairs:
            rng.shuffle(order)
            chunk = order[: pairs - written]
            fs.writelines(src[i] + "\n" for i in chunk)
            ft.writelines(tgt[i] + "\n" for i in chunk)
            written += len(chunk)
    os.replace(f"{prefix}.de.tmp", f"{prefix}.de")
    os.replace(f"{prefix}.en.tmp", f"{prefix}.en")
    return prefix


def train_spm(data: Path, out: Path) -> Path:
    """A joint 8k BPE model on Multi30k's training text (once)."""
    if out.is_file():
        return out
    import sentencepiece as spm

    lines = (data / "train.de").read_text(encoding="utf-8").splitlines()
    lines += (data / "train.en").read_text(encoding="utf-8").splitlines()
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=writer,
        vocab_size=8000,
        model_type="bpe",
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        minloglevel=2,
    )
    out.write_bytes(writer.getvalue())
    return out


def config(work: Path, prefix: Path, spm: Path, run: Path, store: bool) -> Path:
    """The run's YAML (JSON is YAML); ``store``: the tree knows data.cache_dir."""
    data = {"format": "text", "path": str(work), "train": prefix.name, "valid": "", "src_lang": "de", "tgt_lang": "en"}
    if store:
        data["cache_dir"] = str(work / "cache")
    values = {
        "task": "translation",
        "data": data,
        "tokenizer": {"model": str(spm)},
        "model": {
            "encoder": "transformer",
            "decoder": "transformer",
            "d_model": 64,
            "ffn_dim": 256,
            "heads": 4,
            "enc_layers": 1,
            "dec_layers": 1,
            "dropout": 0.1,
        },
        "train": {
            "output_dir": str(run),
            "threads": 2,
            "precision": "fp32",
            "max_steps": 20,
            "max_tokens": 4096,
            "warmup_steps": 10,
            "log_every": 1,
            "valid_every": 0,
            "progress": False,
            "seed": 1,
        },
    }
    path = run.parent / f"{run.name}.yaml"
    path.write_text(json.dumps(values, indent=1), encoding="utf-8")
    return path


# The seq2seq command, noting the peak RSS when the training loop starts (data, model and
# optimizer ready; what follows is the training's own memory) in $RSS_AT_LOOP.
CHILD = """
import atexit, os, sys
import seq2seq.train.trainer as t
rank = os.environ.get("RANK", "")
def peak():
    return [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
loop = t.Trainer._loop
def noted(self):
    open(os.environ["RSS_AT_LOOP"] + rank, "w").write(peak())
    return loop(self)
t.Trainer._loop = noted
if rank:  # under torchrun: each rank notes its own peak at exit
    atexit.register(lambda: open(os.environ["RSS_AT_LOOP"] + rank + ".end", "w").write(peak()))
from seq2seq.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _tree_memory(root: int, with_root: bool = True) -> tuple[float, float]:
    """RSS and PSS (MB) summed over ``root`` (unless not ``with_root``) and its descendants, now."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    rss = pss = 0.0
    todo = [root] if with_root else list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return rss, pss


def run_child(args: list[str], tree: Path, log: Optional[Path] = None, ranks: int = 1) -> dict:
    """Run the seq2seq command ``ARGS`` with ``tree`` first on PYTHONPATH; its wall time, peak RSS,
    peak RSS when the training loop started and (``log``: the JSON-lines train log to watch)
    when its first update was logged. ``ranks`` > 1: under torchrun, each rank's peak RSS."""
    note = Path(f"/tmp/corpus-scale-rss-{os.getpid()}")
    for old in note.parent.glob(note.name + "*"):
        old.unlink()
    threads = "2" if ranks == 1 else "1"
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "RSS_AT_LOOP": str(note),
    }
    first: list[float] = []
    start = time.time()
    if ranks == 1:
        # Not from the repository: `python -c` puts the working directory first on sys.path.
        command = [sys.executable, "-c", CHILD, *args]
    else:
        script = note.parent / f"{note.name}-child.py"
        script.write_text(CHILD, encoding="utf-8")
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        command = [*launcher, str(script), *args, "--set", "train.threads=1"]
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tree.parent,
    )
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() and log is not None:
            if log.is_file() and '"event": "train"' in log.read_text(encoding="utf-8"):
                first.append(time.time() - start)
                return
            time.sleep(0.01)

    together = {"rss": 0.0, "pss": 0.0}

    def sample() -> None:
        # Every training process of the run at the same instant (under torchrun: the ranks, not
        # the launcher): the sum of RSS counts shared pages (libraries; the store is read with
        # pread, so it is in the page cache, not in any RSS) once per process, PSS splits them.
        while not done.is_set():
            rss, pss = _tree_memory(proc.pid, with_root=ranks == 1)  # not torchrun's own process
            together["rss"] = max(together["rss"], rss)
            together["pss"] = max(together["pss"], pss)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    done.set()
    watcher.join()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"seq2seq {' '.join(args)} failed ({proc.returncode}):\n{output[-3000:]}")
    if ranks == 1:
        at_loop = int(note.read_text()) / 1024 if note.is_file() else None
        peaks = [usage.ru_maxrss / 1024]
    else:
        at_loop = max(int(Path(f"{note}{r}").read_text()) / 1024 for r in range(ranks))
        peaks = [int(Path(f"{note}{r}.end").read_text()) / 1024 for r in range(ranks)]
    for old in note.parent.glob(note.name + "*"):
        old.unlink()
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # with the workers it waited for
        "peak_rss_mb": sum(peaks),
        "rank_peak_rss_mb": peaks,
        "together_rss_mb": together["rss"],
        "together_pss_mb": together["pss"],
        "first_update_s": first[0] if first else None,
        "rss_at_loop_mb": at_loop,
        "output": output,
    }


def tokens_per_s(log: Path) -> float:
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    rates = [r["tokens_per_s"] for r in records if r.get("event") == "train" and r["step"] > 5]
    return statistics.mean(rates) if rates else float("nan")


def build_store(work: Path, prefix: Path, cfg: Path, tree: Path) -> dict:
    """``seq2seq prepare`` into an empty cache: the token store built (wall and CPU seconds of
    the whole command, the store's own build time from its meta.json)."""
    shutil.rmtree(work / "cache", ignore_errors=True)
    prepared = run_child(["prepare", str(cfg)], tree)
    meta_file = next((work / "cache").glob(f"{prefix.name}.*/meta.json"), None)
    meta = json.loads(meta_file.read_text()) if meta_file else {}
    return {
        "build_s": prepared["wall_s"],
        "build_cpu_s": prepared["cpu_s"],
        "prepare_rss_mb": prepared["peak_rss_mb"],
        "store_build_s": meta.get("seconds"),
        "store_tokens": {side: meta[side]["tokens"] for side in ("src", "tgt") if side in meta},
    }


def measure(work: Path, prefix: Path, spm: Path, tree: Path, name: str, store: bool, ranks: int = 1) -> dict:
    """Training (step 2) on ``prefix``'s corpus; ``store``: the tree reads a token store (built
    by :func:`build_store` before)."""
    run = work / f"run-{name}"
    shutil.rmtree(run, ignore_errors=True)
    cfg = config(work, prefix, spm, run, store)
    result: dict = {}
    trained = run_child(["train", str(cfg)], tree, run / "train_log.jsonl", ranks=ranks)
    result.update(
        train_wall_s=trained["wall_s"],
        train_rss_mb=trained["peak_rss_mb"],
        rank_rss_mb=trained["rank_peak_rss_mb"],
        together_rss_mb=trained["together_rss_mb"],
        together_pss_mb=trained["together_pss_mb"],
        rss_at_loop_mb=trained["rss_at_loop_mb"],
        first_update_s=trained["first_update_s"],
        tokens_per_s=tokens_per_s(run / "train_log.jsonl"),
    )
    shutil.rmtree(run, ignore_errors=True)
    return result


# ------------------------------------------------------------------------- fairseq-preprocess
def fairseq_venv(given: str) -> Optional[Path]:
    """The fairseq virtual environment: ``given``, else ``$PEERS_ROOT/fairseq`` (``/tmp/peers``);
    None when it has no ``fairseq-preprocess``."""
    venv = Path(given or Path(os.environ.get("PEERS_ROOT", "/tmp/peers")) / "fairseq")
    return venv if (venv / "bin" / "fairseq-preprocess").is_file() else None


def fairseq_dict(spm: Path, out: Path) -> Path:
    """fairseq's dict.txt of the SentencePiece model's pieces (control and unknown ids left out,
    as fairseq adds its own), in the model's order, as ``benchmarks/peers/prepare_data.sh``."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(spm))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    out.write_text("".join(f"{p} 1\n" for p in pieces), encoding="utf-8")
    return out


# SentencePiece pieces of PREFIX.{de,en} written to OUT.{de,en}: argv = model, threads, PREFIX, OUT.
ENCODE = """
import sys, sentencepiece
model, threads, prefix, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sp = sentencepiece.SentencePieceProcessor(model_file=model)
for lang in ("de", "en"):
    with open(f"{prefix}.{lang}", encoding="utf-8") as fi, open(f"{out}.{lang}", "w", encoding="utf-8") as fo:
        while True:
            lines = [line.rstrip("\\n") for _, line in zip(range(10000), fi)]
            if not lines:
                break
            pieces = sp.encode(lines, out_type=str, num_threads=threads)
            fo.write("".join(" ".join(p) + "\\n" for p in pieces))
"""


def timed(command: list[str], env: Optional[dict] = None) -> dict:
    """Wall and CPU seconds (with the workers it waited for) and peak RSS of ``command``; its
    output."""
    start = time.time()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "output": output,
    }


def fairseq_preprocess(work: Path, prefix: Path, spm: Path, venv: Path, workers: int) -> dict:
    """The SentencePiece encoding of ``prefix``'s corpus, then ``fairseq-preprocess`` of it with
    ``workers``; each one's wall and CPU seconds, and the tokens fairseq counted."""
    pieces = work / f"p{prefix.name[1:]}"
    dest = work / f"fairseq-{prefix.name}"
    shutil.rmtree(dest, ignore_errors=True)
    threads = str(workers)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONWARNINGS": "ignore"}
    encode = timed([sys.executable, "-c", ENCODE, str(spm), threads, str(prefix), str(pieces)], env)
    dictionary = fairseq_dict(spm, work / "fairseq-dict.txt")
    binarize = timed(
        [
            str(venv / "bin" / "fairseq-preprocess"),
            "--source-lang",
            "de",
            "--target-lang",
            "en",
            "--trainpref",
            str(pieces),
            "--srcdict",
            str(dictionary),
            "--tgtdict",
            str(dictionary),
            "--destdir",
            str(dest),
            "--workers",
            str(workers),
        ],
        env,
    )
    # "[de] /tmp/.../p100000.de: 100000 sents, 1534001 tokens, 0.0% replaced (by <unk>)"
    counted = {}
    for line in binarize["output"].splitlines():
        if " sents, " in line and "] " in line:
            lang = line.split("[", 1)[1].split("]", 1)[0]
            words = line.split(": ", 1)[1].split(", ")
            counted[lang] = {
                "sents": int(words[0].split()[0]),
                "tokens": int(words[1].split()[0]),
                "replaced": words[2].split(" replaced")[0],
            }
    for path in Path(f"{pieces}.de"), Path(f"{pieces}.en"):
        path.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    return {
        "encode_s": encode["wall_s"],
        "encode_cpu_s": encode["cpu_s"],
        "preprocess_s": binarize["wall_s"],
        "preprocess_cpu_s": binarize["cpu_s"],
        "preprocess_rss_mb": binarize["peak_rss_mb"],
        "counted": counted,
    }


def build_table(rows: list[tuple[int, dict, dict]], workers: int) -> None:
    """Store building against fairseq-preprocess (best wall time of the repeats for each)."""
    print()
    print(f"Store building, {workers} workers each (pairs/s; CPU seconds of the command and its workers):")
    print()
    print(
        "| pairs | ours: `seq2seq prepare` | fairseq-preprocess alone | spm encode + fairseq-preprocess | "
        "ours / fairseq-preprocess | ours / (encode + fairseq-preprocess) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")

    def cell(seconds: float, cpu: float, pairs: int) -> str:
        return f"{seconds:.1f} s, {pairs / seconds:,.0f}/s, {cpu:.1f} s CPU"

    for pairs, ours, peer in rows:
        both_s, both_cpu = peer["encode_s"] + peer["preprocess_s"], peer["encode_cpu_s"] + peer["preprocess_cpu_s"]
        print(
            f"| {pairs:,} | {cell(ours['build_s'], ours['build_cpu_s'], pairs)} | "
            f"{cell(peer['preprocess_s'], peer['preprocess_cpu_s'], pairs)} | {cell(both_s, both_cpu, pairs)} | "
            f"{peer['preprocess_s'] / ours['build_s']:.2f}x | {both_s / ours['build_s']:.2f}x |"
        )


def rss(figures: dict) -> str:
    """Peak RSS for the table: one process's, or the ranks' sum and each rank's."""
    ranks = figures["rank_rss_mb"]
    each = " + ".join(f"{r:,.0f}" for r in ranks)
    return f"{figures['train_rss_mb']:,.0f} MB" + (f" ({each})" if len(ranks) > 1 else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        default=str(REPO.parent / "shared" / "data" / "multi30k"),
        help="directory with Multi30k's train.de and train.en",
    )
    p.add_argument("--work-dir", default="/tmp/seq2seq-corpus-scale", help="corpora, store, runs (kept for reuse)")
    p.add_argument("--spm", default="", help="SentencePiece model (default: train one on the Multi30k text)")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    p.add_argument("--compare", default="", help="another seq2seq source tree to run at --compare-sizes")
    p.add_argument("--compare-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    p.add_argument("--ranks", type=int, default=1, help="also train as this many DDP processes (torchrun, gloo)")
    p.add_argument("--tree", default=str(REPO), help="the seq2seq source tree measured (default: this one)")
    p.add_argument("--fairseq", default="", help="fairseq's venv (default: $PEERS_ROOT/fairseq, if there)")
    p.add_argument("--repeat", type=int, default=1, help="store builds (ours, fairseq's, alternating) per size")
    p.add_argument("--build-only", action="store_true", help="build the stores, do not train")
    args = p.parse_args()
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    tree = Path(args.tree)
    spm = Path(args.spm) if args.spm else train_spm(data, work / "spm.model")
    venv = fairseq_venv(args.fairseq)
    workers = len(os.sched_getaffinity(0))  # what our build uses (one process per core)
    if venv is None:
        print(f"fairseq-preprocess: skipped (no {args.fairseq or '$PEERS_ROOT/fairseq'}/bin/fairseq-preprocess)")
    else:
        print(f"fairseq-preprocess: {venv}, {workers} workers as ours", flush=True)
    rows, builds = [], []
    for pairs in args.sizes:
        prefix = write_corpus(data, work, pairs)
        ours: dict = {}
        peer: dict = {}
        for _ in range(args.repeat):  # ours and fairseq's alternate
            cfg = config(work, prefix, spm, work / f"run-{pairs}", True)
            built = build_store(work, prefix, cfg, tree)
            print(json.dumps({"code": "store build", "pairs": pairs, **built}), flush=True)
            if not ours or built["build_s"] < ours["build_s"]:
                ours = built
            if venv is not None:
                figures = fairseq_preprocess(work, prefix, spm, venv, workers)
                print(json.dumps({"code": "fairseq-preprocess", "pairs": pairs, **figures}), flush=True)
                if not peer or figures["encode_s"] + figures["preprocess_s"] < peer["encode_s"] + peer["preprocess_s"]:
                    peer = figures
        if peer:
            builds.append((pairs, ours, peer))
        if args.build_only:
            continue
        figures = {**ours, **measure(work, prefix, spm, tree, f"{pairs}", store=True)}
        rows.append(("store", pairs, figures))
        print(json.dumps({"code": "store", "pairs": pairs, **figures}), flush=True)
        if args.ranks > 1:
            ddp = measure(work, prefix, spm, tree, f"{pairs}-ddp", store=True, ranks=args.ranks)
            rows.append((f"{args.ranks} ranks", pairs, ddp))
            print(json.dumps({"code": f"{args.ranks} ranks", "pairs": pairs, **ddp}), flush=True)
        if args.compare and pairs in args.compare_sizes:
            old = measure(work, prefix, spm, Path(args.compare), f"{pairs}-compare", store=False)
            rows.append(("compare", pairs, old))
            print(json.dumps({"code": "compare", "pairs": pairs, **old}), flush=True)
    if builds:
        build_table(builds, workers)
    if not rows:
        return
    print()
    print(
        "| code | pairs | store build (prepare) | train peak RSS | peak PSS, training processes | "
        "peak RSS at the loop's start | launch to first update | train wall | tokens/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for code, pairs, f in rows:
        build = f"{f['build_s']:.1f} s" if "build_s" in f else "-"
        print(
            f"| {'this tree' if code == 'store' else code} | {pairs:,} | {build} | {rss(f)} | "
            f"{f['together_pss_mb']:,.0f} MB | {f['rss_at_loop_mb']:,.0f} MB | "
            f"{f['first_update_s']:.1f} s | {f['train_wall_s']:.1f} s | "
            f"{f['tokens_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
