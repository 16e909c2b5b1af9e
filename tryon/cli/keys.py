"""`tryon keys`: the API keys storefronts call the service with (add, list, revoke).

The keys file (TRYON_API_KEYS_FILE, the same file the server reads) stores digests only;
`add` prints the new key once, on standard output, and it cannot be shown again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from tryon.cli.common import JsonOption, console, emit_json

app = typer.Typer(
    help="API keys for storefronts: add (prints the key once), list, revoke.",
    no_args_is_help=True,
)

KeysFileOption = Annotated[
    Path,
    typer.Option(
        "--keys-file",
        envvar="TRYON_API_KEYS_FILE",
        help="The API keys file the server reads (env TRYON_API_KEYS_FILE).",
        show_default=False,
    ),
]
NameArgument = Annotated[str, typer.Argument(help="Who holds the key, e.g. the storefront.")]


@app.command()
def add(
    name: NameArgument,
    keys_file: KeysFileOption,
    rate: Annotated[
        float, typer.Option(min=0, help="Calls per second on each server process; 0: no limit.")
    ] = 0.0,
    burst: Annotated[
        int, typer.Option(min=0, help="Calls at once above the rate; 0: one second's worth.")
    ] = 0,
) -> None:
    """Make a key for NAME: the key goes to standard output, once; the file keeps its hash."""
    from tryon.server.auth import add_key

    key = add_key(keys_file, name, rate, burst)
    typer.echo(key)
    console.print(
        f"added key {name!r} to {keys_file}; hand it over now: it is not stored and cannot "
        "be shown again. Servers pick it up within seconds."
    )


@app.command("list")
def list_keys(keys_file: KeysFileOption, as_json: JsonOption = False) -> None:
    """The keys in the file: name, id, created, revoked, rate (never the keys)."""
    from tryon.server.auth import read_keys

    keys = read_keys(keys_file)
    if as_json:
        fields = ("name", "id", "created", "revoked", "rate_per_s", "burst")
        rows = [{k: v for k, v in dataclasses.asdict(key).items() if k in fields} for key in keys]
        emit_json(rows, print_it=True, output=None)
        return
    for key in keys:
        state = f"revoked {key.revoked}" if key.revoked else "valid"
        rate = f"{key.rate_per_s:g}/s" if key.rate_per_s > 0 else "no limit"
        typer.echo(f"{key.name}\t{key.id}\tcreated {key.created}\t{state}\t{rate}")


@app.command()
def revoke(
    name: NameArgument,
    keys_file: KeysFileOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
) -> None:
    """Revoke NAME's key: its calls fail PERMISSION_DENIED once servers reload the file."""
    from tryon.server.auth import revoke_key

    if not yes:
        typer.confirm(f"revoke the key {name!r}? Its storefront's calls will fail", abort=True)
    revoked = revoke_key(keys_file, name)
    console.print(f"revoked key {revoked.name!r} (id {revoked.id}) at {revoked.revoked}")
