"""What the command line keeps off the user's terminal: the TF Lite runtime's notices, and the service's
per-request log lines unless asked for."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# The runtime's C++ code writes these on fd 2 when it builds an interpreter (no setting turns them off):
# "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." Anything else it writes is kept.
RUNTIME_NOTICES = (b"INFO: Created TensorFlow Lite", b"INFO: Initialized TensorFlow Lite runtime")


@contextmanager
def runtime_notices_dropped() -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards replay what it wrote there, less the runtime's notices. The
    capture is at the descriptor, not ``sys.stderr``: the notices come from C++, not Python. Only for a
    single-threaded moment (loading the model), as another thread's messages would be delayed with them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(keepends=True) if not line.startswith(RUNTIME_NOTICES)]
            if kept:
                os.write(2, b"".join(kept))


def log_level(verbose: bool, quiet_level: str) -> str:
    """The service's log level on the command line: LOG_LEVEL when the user set it, INFO (a JSON line per
    request) with --verbose, else ``quiet_level``: a command-line user reads the answer, not the service's log."""
    chosen = os.environ.get("LOG_LEVEL", "").strip().upper()
    if chosen:
        return chosen
    return "INFO" if verbose else quiet_level
