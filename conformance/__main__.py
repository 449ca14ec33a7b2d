"""``python -m conformance``: see :mod:`conformance.cli`."""

import os
import sys

from conformance.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Unix tools do
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 1
raise SystemExit(status)
