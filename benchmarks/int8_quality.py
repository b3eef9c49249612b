"""What ``--quantize int8`` and ``--precision bf16`` cost in BLEU and gain in speed, on trained checkpoints.

    python benchmarks/int8_quality.py --src test2016.de --ref test2016.en \\
        runs/multi30k/transformer/best runs/multi30k/gru_bahdanau/best

For each checkpoint: test-set BLEU (sacreBLEU, detokenized), decoding time with beam 5 and
the share of outputs identical to fp32's, in fp32, with int8 dynamic quantization and in bf16
(``--variants``), in one process (model load excluded).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--variants",
        nargs="+",
        default=["fp32", "int8", "bf16"],
        choices=["fp32", "int8", "int8-rows", "bf16", "fp16"],
        help="fp32 first: the others are compared with it",
    )
    args = p.parse_args()

    import sacrebleu
    import torch

    from seq2seq.infer.translator import Translator

    torch.set_num_threads(args.threads)
    src = args.src.read_text(encoding="utf-8").splitlines()
    ref = args.ref.read_text(encoding="utf-8").splitlines()
    print("| checkpoint | weights | BLEU | decode s | sent/s | speed-up | outputs as fp32 |")
    print("|---|---|---|---|---|---|---|")
    for ckpt in args.checkpoints:
        base, base_hyps = None, None
        for variant in args.variants:
            quantize = variant if variant.startswith("int8") else None
            translator = Translator.from_checkpoint(
                ckpt, device="cpu", quantize=quantize, precision="fp32" if quantize else variant
            )
            translator.translate(src[:16], beam=args.beam)  # warm-up
            start = time.perf_counter()
            hyps = translator.translate(src, beam=args.beam)
            seconds = time.perf_counter() - start
            base, base_hyps = base or seconds, base_hyps or hyps
            same = sum(h == b for h, b in zip(hyps, base_hyps)) / len(hyps)
            score = sacrebleu.corpus_bleu(hyps, [ref]).score
            print(
                f"| {ckpt} | {variant} | {score:.2f} | {seconds:.2f} | {len(src) / seconds:.1f} | "
                f"{base / seconds:.2f}x | {same:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
