"""Signed C2PA manifests: written into each try-on, read back and validated.

The manifest says, with a signature a store's certificate vouches for, that the image
was created by a trained model (IPTC digital source type `trainedAlgorithmicMedia`),
which weights made it, and which try-on it is. It uses the official `c2pa-python`
bindings, which embed it in JPEG (APP11), PNG (caBX chunk) and WebP (C2PA chunk).

A manifest is bound to the file's bytes: any re-encode (a shop's resizer, a social
network) drops or invalidates it. The watermark (`tryon.provenance.watermark`) is what
survives that.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa

import tryon
from tryon.errors import TryOnError

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# Our own assertion, reverse-domain labelled as C2PA asks of custom assertions.
TRYON_ASSERTION = "org.tryon.virtual-try-on"
SIGNING_ALGORITHMS = {"es256": c2pa.C2paSigningAlg.ES256, "es384": c2pa.C2paSigningAlg.ES384}
MIME_TYPES = ("image/jpeg", "image/png", "image/webp")
UNTRUSTED = "signingCredential.untrusted"
# Verification never goes online: no OCSP queries, no remote manifests.
_OFFLINE = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}


class ProvenanceError(TryOnError):
    """Signing is misconfigured (certificate, key) or a manifest could not be written."""


@dataclass(frozen=True)
class TryOnClaims:
    """What a try-on's provenance says: its id and the weights that made it."""

    tryon_id: str
    weights_name: str
    weights_version: str


@dataclass(frozen=True)
class SigningCredentials:
    """The store's C2PA signing identity: the certificate chain (PEM, signing certificate
    first, then intermediates; not the root), its private key (PEM), the algorithm
    (es256 for P-256 keys, es384 for P-384) and an optional RFC 3161 timestamp URL."""

    certificate_chain: bytes
    private_key: bytes
    algorithm: str = "es256"
    timestamp_url: str | None = None

    @classmethod
    def from_files(
        cls,
        certificate: str | Path,
        key: str | Path,
        *,
        algorithm: str = "es256",
        timestamp_url: str | None = None,
    ) -> SigningCredentials:
        """Read the PEM certificate chain and key files; checks that they sign."""
        chain = _read_pem(certificate, "certificate chain", "TRYON_C2PA_CERT")
        private_key = _read_pem(key, "private key", "TRYON_C2PA_KEY")
        credentials = cls(chain, private_key, algorithm, timestamp_url)
        credentials.check()
        return credentials

    def check(self) -> None:
        """Sign a tiny image, so that a wrong key, an unusable certificate (no C2PA
        extended key usage, expired) or an unknown algorithm fail at start, not per call."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="PNG")
        sign_manifest(buffer.getvalue(), "image/png", TryOnClaims("check", "check", "0"), self)

    def signer(self) -> c2pa.Signer:
        """A c2pa-python signer for one signing (the builder consumes it)."""
        if self.algorithm not in SIGNING_ALGORITHMS:
            raise ProvenanceError(
                f"unknown C2PA signing algorithm {self.algorithm!r}; "
                f"choose one of {', '.join(SIGNING_ALGORITHMS)}"
            )
        info = c2pa.C2paSignerInfo(
            SIGNING_ALGORITHMS[self.algorithm],
            self.certificate_chain,
            self.private_key,
            self.timestamp_url,
        )
        try:
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as error:
            raise ProvenanceError(
                f"the C2PA certificate or key is unusable ({error}); give an {self.algorithm} "
                "key and its certificate chain (see docs/provenance.md)"
            ) from None


def load_credentials(
    certificate: str | None, key: str | None, *, required: bool
) -> SigningCredentials | None:
    """The signing credentials from the certificate chain and key paths (settings
    TRYON_C2PA_CERT, TRYON_C2PA_KEY), checked; None when neither is set and signing is
    not `required`. Half a configuration, or none when required, is an error."""
    if certificate and key:
        return SigningCredentials.from_files(certificate, key)
    if certificate or key:
        missing = "TRYON_C2PA_KEY" if certificate else "TRYON_C2PA_CERT"
        raise ProvenanceError(
            f"{missing} is not set; set both TRYON_C2PA_CERT and TRYON_C2PA_KEY (the "
            "signing certificate chain and its private key) or neither"
        )
    if required:
        raise ProvenanceError(
            "C2PA signing is required (TRYON_C2PA_REQUIRED) but no certificate is set; set "
            "TRYON_C2PA_CERT and TRYON_C2PA_KEY (docs/provenance.md says how to get them)"
        )
    return None


@dataclass(frozen=True)
class ManifestReading:
    """What `read_manifest` found in a file.

    Attributes:
        present: the file carries a C2PA manifest.
        state: c2pa's validation state: "Trusted" (valid, and the certificate chains to
            a given trust anchor), "Valid" (signature and bindings check out, signer not
            in the trust list), "Invalid" (tampered, broken); None when absent.
        claims: our try-on claims, when the manifest carries them.
        source_type: the IPTC digital source type of its creation action.
        signer: the signing certificate's issuer/subject as c2pa reports it.
        problems: the validation failures c2pa reported (codes and explanations).
    """

    present: bool
    state: str | None = None
    claims: TryOnClaims | None = None
    source_type: str | None = None
    signer: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.state in ("Valid", "Trusted")

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"


def build_manifest(claims: TryOnClaims) -> dict[str, Any]:
    """The manifest definition for one try-on (c2pa's JSON manifest format)."""
    agent = {"name": f"tryon weights {claims.weights_name}", "version": claims.weights_version}
    return {
        "claim_generator_info": [{"name": "tryon", "version": tryon.__version__}],
        "title": f"virtual try-on {claims.tryon_id}",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": agent,
                            "description": "a shopper photo dressed in a catalogue garment "
                            "by a virtual try-on model",
                        }
                    ]
                },
            },
            {
                "label": TRYON_ASSERTION,
                "data": {
                    "tryon_id": claims.tryon_id,
                    "weights": {"name": claims.weights_name, "version": claims.weights_version},
                },
            },
        ],
    }


def sign_manifest(
    data: bytes, mime_type: str, claims: TryOnClaims, credentials: SigningCredentials
) -> bytes:
    """Return encoded image `data` (`mime_type` image/jpeg, image/png or image/webp) with
    a signed manifest for `claims` embedded."""
    if mime_type not in MIME_TYPES:
        raise ProvenanceError(f"cannot sign {mime_type}; supported: {', '.join(MIME_TYPES)}")
    # No thumbnail: the image is its own preview, and a copy of a shopper is not needed.
    context = c2pa.Context(
        settings=c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    )
    signed = io.BytesIO()
    try:
        with c2pa.Builder(build_manifest(claims), context=context) as builder:
            builder.sign(credentials.signer(), mime_type, io.BytesIO(data), signed)
    except c2pa.C2paError as error:
        raise ProvenanceError(
            f"C2PA signing failed: {error}; check the certificate chain and key "
            "(docs/provenance.md says what C2PA requires of them)"
        ) from None
    return signed.getvalue()


def read_manifest(
    data: bytes, mime_type: str, *, trust_anchors: bytes | None = None
) -> ManifestReading:
    """Read and validate the C2PA manifest in encoded image `data`, offline.

    `trust_anchors` (PEM root certificates) lets a store's own CA make manifests
    "Trusted"; without it a correctly signed manifest is "Valid".
    """
    settings: dict[str, Any] = dict(_OFFLINE)
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors.decode()}
    context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
    try:
        reader = c2pa.Reader.try_create(mime_type, io.BytesIO(data), None, context)
    except c2pa.C2paError as error:
        return ManifestReading(present=True, state="Invalid", problems=(str(error),))
    if reader is None:
        return ManifestReading(present=False)
    with reader:
        store = json.loads(reader.json())
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    return ManifestReading(
        present=True,
        state=store.get("validation_state"),
        claims=_claims(manifest),
        source_type=_source_type(manifest),
        signer=_signer(manifest),
        problems=_problems(store),
    )


def _claims(manifest: dict[str, Any]) -> TryOnClaims | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == TRYON_ASSERTION:
            data = assertion.get("data", {})
            weights = data.get("weights", {})
            return TryOnClaims(
                str(data.get("tryon_id", "")),
                str(weights.get("name", "")),
                str(weights.get("version", "")),
            )
    return None


def _source_type(manifest: dict[str, Any]) -> str | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    return action.get("digitalSourceType")
    return None


def _signer(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("signature_info") or {}
    parts = [info.get("issuer"), info.get("common_name")]
    return " / ".join(str(part) for part in parts if part) or None


def _problems(store: dict[str, Any]) -> tuple[str, ...]:
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = results.get("failure", []) if isinstance(results, dict) else []
    # An untrusted signer is what `state` "Valid" (not "Trusted") already says.
    return tuple(
        f"{item.get('code')}: {item.get('explanation', '')}"
        for item in failures
        if item.get("code") != UNTRUSTED
    )


def _read_pem(path: str | Path, what: str, variable: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ProvenanceError(
            f"cannot read the C2PA {what} {path} ({error.strerror}); set {variable} to a "
            "readable PEM file"
        ) from None
    if b"-----BEGIN" not in data:
        raise ProvenanceError(f"the C2PA {what} {path} is not PEM; {variable} needs a PEM file")
    return data
