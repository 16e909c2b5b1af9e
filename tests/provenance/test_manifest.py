"""The signed C2PA manifest: written in every output format, read back with c2pa-python."""

from __future__ import annotations

import io
import json

import c2pa
import pytest
from provenance_images import encode, photo_like

from tryon.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceError,
    SigningCredentials,
    TryOnClaims,
    load_credentials,
    read_manifest,
    sign_manifest,
)
from tryon.provenance.manifest import TRYON_ASSERTION

CLAIMS = TryOnClaims("7f1c9a52-4e0b-4d3e-9c55-0a8d2f3b6e11", "synthetic", "0.1.0")
FORMATS = [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]


def _reader_store(data: bytes, mime_type: str, root: bytes) -> dict:
    """The manifest store as c2pa-python's own Reader reports it, trusting `root`."""
    settings = c2pa.Settings.from_dict({"trust": {"trust_anchors": root.decode()}})
    with c2pa.Reader(mime_type, io.BytesIO(data), context=c2pa.Context(settings=settings)) as r:
        return json.loads(r.json())


@pytest.mark.parametrize(("fmt", "mime_type"), FORMATS)
def test_every_format_carries_a_trusted_manifest_with_the_claims(authority, fmt, mime_type):
    signed = sign_manifest(encode(photo_like(0), fmt), mime_type, CLAIMS, authority.credentials)
    store = _reader_store(signed, mime_type, authority.root)
    assert store["validation_state"] == "Trusted"
    assertions = {
        a["label"]: a["data"] for a in store["manifests"][store["active_manifest"]]["assertions"]
    }
    (created,) = assertions["c2pa.actions.v2"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert assertions[TRYON_ASSERTION] == {
        "tryon_id": CLAIMS.tryon_id,
        "weights": {"name": "synthetic", "version": "0.1.0"},
    }


def test_reading_names_the_claims_and_trust(authority):
    signed = sign_manifest(encode(photo_like(1), "PNG"), "image/png", CLAIMS, authority.credentials)
    untrusted = read_manifest(signed, "image/png")
    assert (untrusted.state, untrusted.valid, untrusted.trusted) == ("Valid", True, False)
    trusted = read_manifest(signed, "image/png", trust_anchors=authority.root)
    assert trusted.trusted and trusted.claims == CLAIMS
    assert trusted.source_type == TRAINED_ALGORITHMIC_MEDIA


def test_changed_pixels_invalidate_the_manifest(authority):
    signed = bytearray(
        sign_manifest(encode(photo_like(2)), "image/jpeg", CLAIMS, authority.credentials)
    )
    signed[-200] ^= 0x55  # inside the entropy-coded image data, which the manifest hashes
    reading = read_manifest(bytes(signed), "image/jpeg", trust_anchors=authority.root)
    assert reading.present and reading.state == "Invalid"
    assert any("mismatch" in problem for problem in reading.problems)


def test_an_unsigned_file_has_no_manifest():
    assert not read_manifest(encode(photo_like(3)), "image/jpeg").present


def test_credentials_from_files(tmp_path, authority):
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(authority.credentials.certificate_chain)
    key.write_bytes(authority.credentials.private_key)
    loaded = load_credentials(str(cert), str(key), required=True)
    assert loaded == authority.credentials


def test_no_certificate_is_allowed_only_when_not_required(tmp_path):
    assert load_credentials(None, None, required=False) is None
    with pytest.raises(ProvenanceError, match="TRYON_C2PA_CERT and TRYON_C2PA_KEY"):
        load_credentials(None, None, required=True)
    with pytest.raises(ProvenanceError, match="TRYON_C2PA_KEY is not set"):
        load_credentials(str(tmp_path / "chain.pem"), None, required=False)


def test_unusable_credentials_fail_when_loaded(tmp_path, authority):
    missing = tmp_path / "absent.pem"
    with pytest.raises(ProvenanceError, match="cannot read the C2PA certificate chain"):
        load_credentials(str(missing), str(missing), required=False)
    other = SigningCredentials(authority.credentials.certificate_chain, _other_key())
    with pytest.raises(ProvenanceError, match="certificate chain and key"):
        other.check()


def _other_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
