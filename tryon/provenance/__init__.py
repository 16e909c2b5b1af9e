"""Provenance of try-ons: every output says it is AI-generated, in two independent ways.

- A signed C2PA manifest (`manifest`): the IPTC digital source type
  `trainedAlgorithmicMedia`, the weights' name and version and the try-on id, signed with
  the store's certificate. Verifiable by any C2PA tool; lost when the file is re-encoded.
- An invisible watermark (`watermark`): a 64-bit payload (try-on id hash, weights code,
  CRC) in the pixels, which survives JPEG re-compression and resizing.

`mark_image` applies the watermark to pixels before encoding, `sign_manifest` signs the
encoded file, `verify_image` checks both. Depends on Pillow, numpy and c2pa-python only.
"""

from __future__ import annotations

import numpy as np

from tryon.provenance.manifest import (
    TRAINED_ALGORITHMIC_MEDIA,
    ManifestReading,
    ProvenanceError,
    SigningCredentials,
    TryOnClaims,
    load_credentials,
    read_manifest,
    sign_manifest,
)
from tryon.provenance.verification import Verification, verify_image
from tryon.provenance.watermark import (
    MIN_SIDE,
    WatermarkPayload,
    WatermarkReading,
    embed_watermark,
    read_watermark,
)

__all__ = [
    "TRAINED_ALGORITHMIC_MEDIA",
    "ManifestReading",
    "ProvenanceError",
    "SigningCredentials",
    "TryOnClaims",
    "Verification",
    "WatermarkPayload",
    "WatermarkReading",
    "embed_watermark",
    "load_credentials",
    "mark_image",
    "read_manifest",
    "read_watermark",
    "sign_manifest",
    "verify_image",
]


def mark_image(image: np.ndarray, claims: TryOnClaims) -> np.ndarray:
    """Watermark RGB `image` `(H, W, 3)` `uint8` with `claims` (a copy is returned).

    Images under `MIN_SIDE` (32) pixels a side are too small to carry the mark and are
    returned as they are: they keep only the C2PA manifest.
    """
    if min(image.shape[:2]) < MIN_SIDE:
        return image
    payload = WatermarkPayload.for_tryon(
        claims.tryon_id, claims.weights_name, claims.weights_version
    )
    return embed_watermark(image, payload)
