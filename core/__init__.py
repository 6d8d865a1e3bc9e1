"""Cloud-neutral image classification with TF Lite: the shared core of every adapter.

Importing is cheap; the model loads on first use. ``get_service().handle(Request(...))`` answers a request.
``Response``, ``Service`` and ``get_service`` load the service (numpy, Pillow, the interpreter) when first named, so
a tool that needs only ``core.limits`` or ``core.deadline`` (the bulk command's endpoint client) never does.
"""

import os

# numpy's OpenBLAS starts a thread per visible CPU, and each spins ~0.1 s waiting for work that never comes
# (nothing here calls BLAS). On Lambda two vCPUs are visible while 1024 MB buys ~0.6 of one, so that spin is
# cold-start time (measured: 217 -> 132 ms of CPU per cold start). Must be set before numpy loads; an
# explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .contract import Request, Response
    from .service import Service, get_service

__all__ = ["Request", "Response", "Service", "get_service"]


def __getattr__(name: str) -> Any:  # PEP 562: the service's names, imported when first used
    if name in ("Request", "Response"):
        from . import contract

        return getattr(contract, name)
    if name in __all__:
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
