"""One error hierarchy for the whole service; adapters map it to HTTP with ``status``."""

from __future__ import annotations


class ServiceError(Exception):
    """A failure the client can act on. ``type`` and ``message`` go into the JSON error body, ``headers`` into
    the answer (405's Allow, 503's Retry-After)."""

    status = 400
    type = "bad_request"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"type": self.type, "message": self.message}}


class BadRequest(ServiceError):
    status, type = 400, "bad_request"


class NotFound(ServiceError):
    status, type = 404, "not_found"


class MethodNotAllowed(ServiceError):
    status, type = 405, "method_not_allowed"


class PayloadTooLarge(ServiceError):
    status, type = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, type = 415, "unsupported_media_type"


class InvalidImage(ServiceError):
    status, type = 422, "invalid_image"


class FetchFailed(ServiceError):
    status, type = 502, "fetch_failed"


class FetchTimeout(ServiceError):
    status, type = 504, "fetch_timeout"


class ServiceBusy(ServiceError):
    status, type = 503, "service_busy"


class ConfigurationError(Exception):
    """A setting of the deployment is wrong (an environment variable): an operator's problem, answered 500."""


class ModelError(Exception):
    """The deployed model or its manifest is broken: an operator's problem, never the client's."""
