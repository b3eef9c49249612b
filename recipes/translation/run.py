"""Multi30k German -> English: train one config, then evaluate it on test2016.

    python recipes/translation/run.py --config recipes/translation/transformer.yaml \
        --data-dir /path/to/multi30k

Writes the checkpoints, ``test2016.hyp`` and ``results.json`` (BLEU/chrF with signatures,
parameters, training time, machine) under the config's ``train.output_dir``, and prints
a results-table row.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

from seq2seq.config import load_config
from seq2seq.data.loading import load_parallel
from seq2seq.errors import Seq2SeqError
from seq2seq.infer.translator import Translator
from seq2seq.metrics import bleu, chrf
from seq2seq.train.trainer import Trainer


def machine() -> str:
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def run(args: argparse.Namespace) -> dict:
    overrides = list(args.set)
    if args.data_dir:
        overrides.append(f"data.path={args.data_dir}")
    cfg = load_config(args.config, overrides)
    out = Path(cfg.train.output_dir)
    if not args.skip_training:
        Trainer(cfg, resume=args.resume).fit()

    log_records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    end = [r for r in log_records if r["event"] == "end"]
    translator = Translator.from_checkpoint(out / "best", device=cfg.train.device)
    test = load_parallel(cfg.data, cfg.data.test)
    started = time.time()
    hyps = translator.translate(test.src, beam=args.beam or cfg.search.beam, progress=True)
    decode_seconds = time.time() - started
    (out / "test.hyp").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    cased = bleu(hyps, test.tgt)
    lower = bleu(hyps, test.tgt, tokenize="13a", lowercase=True)
    chr_f = chrf(hyps, test.tgt)
    results = {
        "config": args.config,
        "test": test.name,
        "bleu": round(cased.score, 2),
        "bleu_signature": cased.signature,
        "bleu_lowercase": round(lower.score, 2),
        "bleu_lowercase_signature": lower.signature,
        "chrf": round(chr_f.score, 2),
        "chrf_signature": chr_f.signature,
        "beam": args.beam or cfg.search.beam,
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "train_seconds": end[-1]["seconds"] if end else None,
        "updates": end[-1]["step"] if end else None,
        "decode_seconds": round(decode_seconds, 1),
        "machine": machine(),
        "torch": torch.__version__,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(cased)
    print(lower)
    print(chr_f)
    print(
        f"| {Path(args.config).stem} | {results['bleu']} | {results['bleu_lowercase']} | {results['chrf']} "
        f"| {results['parameters'] / 1e6:.1f}M | {(results['train_seconds'] or 0) / 60:.1f} min "
        f"| {results['machine']} |"
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="one of recipes/translation/*.yaml")
    parser.add_argument(
        "--data-dir", default=None, help="folder with train/val/test2016 .de/.en files (see the recipe README)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--resume", action="store_true", help="resume the run from its last checkpoint")
    parser.add_argument("--skip-training", action="store_true", help="only evaluate the existing best checkpoint")
    parser.add_argument("--beam", type=int, default=None, help="beam size for the test set (default: config)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        run(args)
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
