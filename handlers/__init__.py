"""Thin platform adapters over ``core``; the AWS Lambda one lives in ``handlers.aws``."""
