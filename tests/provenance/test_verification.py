"""`verify_image` and `tryon verify`: what a store or a shopper learns about a file."""

from __future__ import annotations

import json

import pytest
from provenance_images import encode, photo_like, shop_treatment
from typer.testing import CliRunner

from tryon.cli import app
from tryon.provenance import TryOnClaims, mark_image, sign_manifest, verify_image

CLAIMS = TryOnClaims("3d0f6a8e-91b2-4f7c-a1d4-5e6b7c8d9e0f", "synthetic", "0.1.0")
KNOWN = [("synthetic", "0.1.0"), ("viton", "0.1.0")]


@pytest.fixture
def try_on(authority) -> bytes:
    """A try-on as the service sends it: watermarked, JPEG, signed."""
    data = encode(mark_image(photo_like(7, (320, 240)), CLAIMS), "JPEG", quality=90)
    return sign_manifest(data, "image/jpeg", CLAIMS, authority.credentials)


def test_a_try_on_is_signed_and_its_marks_agree(try_on, authority):
    result = verify_image(try_on, trust_anchors=authority.root, known_weights=KNOWN)
    assert result.status == "signed" and result.verified
    assert result.manifest.trusted and result.manifest.claims == CLAIMS
    assert result.watermark.found and result.weights == "synthetic 0.1.0"


def test_re_encoding_strips_the_manifest_but_the_watermark_remains(try_on):
    result = verify_image(shop_treatment(try_on), known_weights=KNOWN)
    assert not result.manifest.present
    assert result.status == "watermarked" and result.verified
    assert result.weights == "synthetic 0.1.0"


def test_a_different_image_has_no_mark():
    result = verify_image(encode(photo_like(8, (320, 240))))
    assert result.status == "unmarked" and not result.verified
    assert not result.watermark.found


def test_edited_pixels_make_the_file_invalid(try_on):
    tampered = bytearray(try_on)
    tampered[-300] ^= 0x41
    result = verify_image(bytes(tampered))
    assert result.status == "invalid" and not result.verified


def test_a_manifest_moved_onto_another_try_on_contradicts_its_watermark(authority):
    other = encode(mark_image(photo_like(9, (320, 240)), CLAIMS), "PNG")
    lying = TryOnClaims("another-id", "synthetic", "0.1.0")
    result = verify_image(sign_manifest(other, "image/png", lying, authority.credentials))
    assert result.status == "invalid"
    assert "another try-on" in result.reason


def test_cli_reports_each_file_and_exits_0_when_all_are_marked(tmp_path, try_on, authority):
    signed, reencoded = tmp_path / "tryon.jpg", tmp_path / "shared.jpg"
    signed.write_bytes(try_on)
    reencoded.write_bytes(shop_treatment(try_on))
    anchors = tmp_path / "root.pem"
    anchors.write_bytes(authority.root)
    runner = CliRunner()
    result = runner.invoke(
        app, ["verify", str(signed), str(reencoded), "--trust-anchors", str(anchors), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    first, second = report[str(signed)], report[str(reencoded)]
    assert first["status"] == "signed" and first["manifest"]["trusted"]
    assert first["manifest"]["tryon_id"] == CLAIMS.tryon_id
    assert first["manifest"]["source_type"].endswith("/trainedAlgorithmicMedia")
    assert second["status"] == "watermarked" and second["watermark"]["weights"] == "synthetic 0.1.0"

    text = runner.invoke(app, ["verify", str(signed)])
    assert text.exit_code == 0
    assert "signed" in text.output and CLAIMS.tryon_id in text.output


def test_cli_exits_1_when_a_file_is_unmarked_or_unreadable(tmp_path, try_on):
    marked, photo, notes = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.txt"
    marked.write_bytes(try_on)
    photo.write_bytes(encode(photo_like(10, (320, 240))))
    notes.write_text("not an image")
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(marked), str(photo), str(notes), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [report[str(p)]["status"] for p in (marked, photo, notes)] == [
        "signed",
        "unmarked",
        "unreadable",
    ]


def test_cli_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["verify"]).exit_code == 2
    assert runner.invoke(app, ["verify", str(tmp_path / "missing.jpg")]).exit_code == 2
