"""The one error hierarchy shared by the pipeline, the server and the CLIs.

Each error says what is wrong and how to fix it; the server maps the classes to gRPC
status codes in one place and the CLIs print the message and exit non-zero.
"""

from __future__ import annotations


class TryOnError(Exception):
    """Base class of every error this product raises on purpose."""


class InvalidInputError(TryOnError):
    """The caller sent something unusable: an undecodable image, a bad option."""


class DatasetError(TryOnError):
    """A dataset folder is missing files or holds malformed ones (the message names the file)."""


class GarmentNotFoundError(TryOnError):
    """No active garment has this SKU."""


class NoPersonError(TryOnError):
    """The photo shows no person, or none the models can handle with enough confidence."""


class NotReadyError(TryOnError):
    """The service is not ready yet (weights loading, warm-up) or a dependency is down."""


class WeightsError(TryOnError):
    """Model weights are missing or do not match the code that loads them."""
