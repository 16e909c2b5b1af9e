"""Client of the virtual try-on service for storefront backends: sync and asyncio, TLS,
API keys, round robin over every replica and retries; no PyTorch needed.

    from tryon_client import TlsOptions, TryOnClient

    with TryOnClient("dns:///tryon-headless.tryon.svc.cluster.local:50051",
                     api_key=key, tls=TlsOptions()) as client:
        response = client.try_on(photo, "SKU-1")

The generated gRPC modules of the API (`proto/tryon/v1`, `v2`) are `tryon_client.stubs`.
"""

from __future__ import annotations

from tryon_client.aio import AsyncExperimentClient, AsyncTryOnClient
from tryon_client.channel import RetryPolicy, TlsOptions
from tryon_client.errors import GarmentsNotDressedError, ServiceError
from tryon_client.messages import OutputOptions, purchase_event, return_event
from tryon_client.sync import ExperimentClient, TryOnClient

__version__ = "0.1.0"
__all__ = [
    "AsyncExperimentClient",
    "AsyncTryOnClient",
    "ExperimentClient",
    "GarmentsNotDressedError",
    "OutputOptions",
    "RetryPolicy",
    "ServiceError",
    "TlsOptions",
    "TryOnClient",
    "purchase_event",
    "return_event",
]
