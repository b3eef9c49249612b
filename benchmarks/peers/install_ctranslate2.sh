#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/install_ctranslate2.sh); unchanged apart from this header.
# CTranslate2 4.8.5 (wheel) + torch (CPU) for the OpenNMT-py checkpoint converter.
set -euo pipefail
source "$(dirname "$0")/common.sh"
V=$PEERS_ROOT/ctranslate2
python3 -m venv "$V"
"$V/bin/pip" install -q "$TORCH_PIN" "numpy<2"
"$V/bin/pip" install -q ctranslate2==4.8.5 sentencepiece==0.2.3 pyyaml -c <(echo "$TORCH_PIN")
"$V/bin/python" -c "import ctranslate2, torch; print('ctranslate2', ctranslate2.__version__, 'torch', torch.__version__, 'cpu_compute_types', ctranslate2.get_supported_compute_types('cpu'))"
# The fairseq converter imports fairseq, so it runs from the fairseq venv: add the ctranslate2 wheel there too
# (converter only; all CTranslate2 decoding runs in $PEERS_ROOT/ctranslate2).
if [ -x "$PEERS_ROOT/fairseq/bin/python" ]; then
  "$PEERS_ROOT/fairseq/bin/pip" install -q ctranslate2==4.8.5 -c <(printf '%s\nnumpy<2\n' "$TORCH_PIN")
  "$PEERS_ROOT/fairseq/bin/python" -c "import ctranslate2, fairseq; print('fairseq venv: ctranslate2', ctranslate2.__version__)"
fi
