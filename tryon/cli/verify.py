"""`tryon verify`: is an image a try-on of this service, and which one?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tryon.cli.common import JsonOption, console

if TYPE_CHECKING:
    from tryon.provenance import Verification

NOT_VERIFIED = 1
BUNDLED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def verify(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Image files (JPEG, PNG, WebP) to check.",
            metavar="IMAGE",
            exists=True,
            dir_okay=False,
        ),
    ],
    trust_anchors: Annotated[
        Path | None,
        typer.Option(
            help="PEM file of root certificates whose C2PA signatures count as trusted "
            "(env TRYON_C2PA_TRUST_ANCHORS).",
            envvar="TRYON_C2PA_TRUST_ANCHORS",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check images for the service's marks: the signed C2PA manifest (valid or not, its
    claims: source type, weights, try-on id) and the invisible watermark (its payload).

    Exits 0 when every image carries an intact mark, 1 when one is unmarked, invalid
    (tampered, or marks that contradict) or unreadable.
    """
    from tryon.provenance import verify_image  # c2pa's native library: only when needed

    anchors = trust_anchors.read_bytes() if trust_anchors else None
    known = bundled_weights()
    results = {
        str(path): verify_image(path.read_bytes(), trust_anchors=anchors, known_weights=known)
        for path in images
    }
    if json_output:
        typer.echo(json.dumps({name: v.to_dict() for name, v in results.items()}, indent=2))
    else:
        for name, verification in results.items():
            _show(name, verification)
    if not all(verification.verified for verification in results.values()):
        raise typer.Exit(NOT_VERIFIED)


def bundled_weights() -> list[tuple[str, str]]:
    """(name, version) of the weights shipped with the package, read from their
    pipeline.json, so that a watermark's weights code can be named."""
    known = []
    for meta_file in sorted(BUNDLED_WEIGHTS.glob("*/pipeline.json")):
        meta = json.loads(meta_file.read_text())
        known.append((str(meta.get("name", meta_file.parent.name)), str(meta.get("version", ""))))
    return known


def _show(name: str, verification: Verification) -> None:
    """Print one file's verdict: a headline, then what the manifest and watermark say."""
    colour = "green" if verification.verified else "red"
    console.print(f"[bold]{name}[/bold]: [{colour}]{verification.status}[/{colour}]")
    console.print(f"  {verification.reason}", highlight=False)
    described = verification.to_dict()
    manifest = described["manifest"]
    if manifest["present"]:
        weights = manifest["weights"] or {}
        console.print(
            f"  manifest: {manifest['state']}, source type {manifest['source_type']}, "
            f"weights {weights.get('name')} {weights.get('version')}, "
            f"try-on id {manifest['tryon_id']}, signer {manifest['signer']}",
            highlight=False,
        )
        for problem in manifest["problems"]:
            console.print(f"    {problem}", highlight=False)
    else:
        console.print("  manifest: none")
    mark = described["watermark"]
    if mark["found"]:
        console.print(
            f"  watermark: found (strength {mark['strength']}), try-on hash "
            f"{mark['tryon_hash']}, weights {mark['weights'] or 'code ' + mark['weights_code']}",
            highlight=False,
        )
    elif mark["strength"] is None:
        console.print("  watermark: not checked (image too small)")
    else:
        console.print(f"  watermark: none (strength {mark['strength']})", highlight=False)
