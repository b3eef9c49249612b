#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/install_onmt.sh); unchanged apart from this header.
# OpenNMT-py 3.5.1 pins torch<2.3 => install with --no-deps and add the runtime deps by hand
# (spacy + fasttext-wheel are imported at top level by onmt.transforms, so needed; flask/waitress/tensorboard are not).
set -euo pipefail
source "$(dirname "$0")/common.sh"
V=$PEERS_ROOT/onmt
python3 -m venv "$V"
"$V/bin/pip" install -q "$TORCH_PIN" "numpy<2"
"$V/bin/pip" install -q --no-deps OpenNMT-py==3.5.1
"$V/bin/pip" install -q configargparse pyyaml sacrebleu rapidfuzz pyahocorasick six "pyonmttok>=1.37,<2" sentencepiece==0.2.3 regex spacy fasttext-wheel -c <(echo "$TORCH_PIN")
"$V/bin/python" -c "import torch, onmt; print('OpenNMT-py', onmt.__version__, 'torch', torch.__version__)"
