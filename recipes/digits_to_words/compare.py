"""Which architecture learns digits -> words fastest? Trains each on the same data and budget.

    python recipes/digits_to_words/compare.py --lang en

Every architecture gets run.py's defaults (its training mixture of 200,000 numerals, 10 minutes
of training at most, early stopping) with only the model changed. Reported: the training time
until the validation exact match first reaches ``--goal`` (99.9% by default), and the final
exact match on run.py's stratified test set, overall and in its weakest stratum. Writes
``compare.md`` and ``compare.json`` under ``--output``; architectures already run there are not
run again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from run import HERE, run

from seq2seq.errors import Seq2SeqError

ARCHITECTURES = {
    "GRU + Luong attention": ("gru.yaml", []),
    "GRU, context vector only": ("gru.yaml", ["model.attention=none"]),
    "Transformer + attention": ("transformer.yaml", []),
    "Transformer, context vector only": ("transformer.yaml", ["model.attention=none"]),
}


def time_to_goal(log_path: Path, goal: float) -> tuple[float | None, int | None]:
    """(seconds, updates) at the first validation with exact match >= goal, or (None, None)."""
    for line in log_path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("event") == "valid" and record.get("valid_exact_match", 0.0) >= goal:
            return record["seconds"], record["step"]
    return None, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=["en", "ko"], default="en")
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training budget per architecture (default: the config's train.max_minutes)",
    )
    parser.add_argument("--goal", type=float, default=99.9, help="validation exact match to reach (%%)")
    parser.add_argument("--output", default=None, help="default: runs/digits_to_words/compare-LANG")
    parser.add_argument("--only", nargs="*", default=None, help="a subset of the architectures (by name)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.output or f"runs/digits_to_words/compare-{args.lang}")
    rows = []
    try:
        for name, (config, overrides) in ARCHITECTURES.items():
            if args.only and name not in args.only:
                continue
            out = root / config.replace(".yaml", "") / ("none" if overrides else "attention")
            if not (out / "results.json").is_file():
                run(
                    argparse.Namespace(
                        lang=args.lang,
                        config=str(HERE / config),
                        output=str(out),
                        train_size=200000,
                        valid_size=2000,
                        test_size=13000,
                        data_seed=1234,
                        beam=1,
                        resume=False,
                        set=[
                            *overrides,
                            "train.progress=false",
                            *args.set,
                            *([f"train.max_minutes={args.minutes}"] if args.minutes else []),
                        ],
                    )
                )
            result = json.loads((out / "results.json").read_text())
            seconds, updates = time_to_goal(out / "train_log.jsonl", args.goal)
            rows.append({"architecture": name, "seconds_to_goal": seconds, "updates_to_goal": updates, **result})
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lines = [
        f"| architecture | time to {args.goal}% valid | updates | test exact match | weakest stratum | "
        "errors | training time | parameters |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        goal = f"{r['seconds_to_goal']:.0f} s" if r["seconds_to_goal"] is not None else "not reached"
        weakest = next(s for s in r["strata"] if s["stratum"] == r["weakest_stratum"])
        lines.append(
            f"| {r['architecture']} | {goal} | {r['updates_to_goal'] or '-'} | {r['exact_match']:.2f}% "
            f"| {weakest['stratum']}: {weakest['exact_match']:.2f}% | {r['errors']} "
            f"| {r['train_seconds']:.0f} s | {r.get('parameters', 0) / 1e6:.2f}M |"
        )
    table = "\n".join(lines) + "\n"
    (root / "compare.md").write_text(table, encoding="utf-8")
    (root / "compare.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
