"""Cloud-neutral image classification with TF Lite: the shared core of every adapter.

Importing is cheap; the model loads on first use. ``get_service().handle_http(...)`` answers a request.
"""

import os

# numpy's OpenBLAS starts a thread per visible CPU, and each spins ~0.1 s waiting for work that never comes
# (nothing here calls BLAS). On Lambda two vCPUs are visible while 1024 MB buys ~0.6 of one, so that spin is
# cold-start time (measured: 217 -> 132 ms of CPU per cold start). Must be set before numpy loads; an
# explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .service import Response, Service, get_service

__all__ = ["Response", "Service", "get_service"]
