"""``python -m seq2seq.cli``: the same as ``python -m seq2seq``."""

import sys

from seq2seq.cli.main import main

sys.exit(main())
