"""The service's output step marks every try-on it encodes (tryon/server/output.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from provenance_images import photo_like

from tryon.provenance import TryOnClaims, verify_image
from tryon.server.output import OutputSpec, encode_result

CLAIMS = TryOnClaims("5a6b7c8d-0e1f-4a2b-9c3d-4e5f6a7b8c9d", "synthetic", "0.1.0")
DESCRIPTION = "virtual try-on, weights synthetic 0.1.0"


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_each_format_is_signed_watermarked_and_keeps_its_exif_note(authority, fmt):
    spec = OutputSpec(fmt=fmt, max_width=240)  # the mark is made at the size sent
    encoded = encode_result(
        photo_like(3, (512, 384)), spec, DESCRIPTION, CLAIMS, authority.credentials
    )
    assert (encoded.width, encoded.height) == (240, 320)
    result = verify_image(encoded.data, trust_anchors=authority.root)
    assert result.status == "signed" and result.manifest.trusted
    assert result.manifest.claims == CLAIMS and result.watermark.found
    exif = Image.open(io.BytesIO(encoded.data)).getexif()
    assert exif[0x010E] == f"AI-generated image: {DESCRIPTION}"


def test_without_a_certificate_outputs_carry_the_watermark_only():
    encoded = encode_result(photo_like(4), OutputSpec(), DESCRIPTION, CLAIMS, None)
    result = verify_image(encoded.data)
    assert result.status == "watermarked" and not result.manifest.present
