#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/install_joeynmt.sh); unchanged apart from this header.
# JoeyNMT 2.3.0: normal install, torch pinned to the local CPU wheel through a constraints file.
# importlib_metadata is imported by joeynmt.helpers but not declared as a dependency.
# sentencepiece 0.2.0 (not 0.2.3): joeynmt calls SetVocabulary(), which 0.2.1+ no longer has (same model format).
set -euo pipefail
source "$(dirname "$0")/common.sh"
V=$PEERS_ROOT/joeynmt
python3 -m venv "$V"
"$V/bin/pip" install -q "$TORCH_PIN"
"$V/bin/pip" install -q joeynmt==2.3.0 sentencepiece==0.2.0 importlib_metadata -c <(echo "$TORCH_PIN")
"$V/bin/python" -c "import torch, joeynmt; print('joeynmt', joeynmt.__version__, 'torch', torch.__version__)"
