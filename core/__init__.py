"""Cloud-neutral image classification with TF Lite: the shared core of every adapter.

Importing is cheap; the model loads on first use. ``get_service().handle_http(...)`` answers a request.
"""
from .service import Response, Service, get_service

__all__ = ["Response", "Service", "get_service"]
