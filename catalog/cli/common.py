"""What every catalog command shares: options, opening the database, output, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from catalog.database import check_schema, create_catalog_engine, make_sessionmaker
from catalog.database import resolve_database_url as _resolve
from catalog.models import Garment, ImageKind
from tryon.errors import TryOnError

DbUrlOption = Annotated[
    str | None,
    typer.Option(
        "--db-url",
        help="Database URL. Default: $TRYON_DATABASE_URL, else the SQLite file ./tryon.db.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and end the command with exit status ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_catalog(db_url: str | None, *, check: bool = True) -> Iterator[sessionmaker[Session]]:
    """Sessions on the catalog database; refuses an out-of-date schema unless ``check=False``.

    Catalog errors and an unreachable database end the command with a message, not a
    traceback.
    """
    url = _resolve(db_url)
    engine = create_catalog_engine(url)
    try:
        if check:
            check_schema(engine)
        yield make_sessionmaker(engine)
    except TryOnError as error:
        fail(str(error))
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        fail(f"cannot use the database {where}: {error.orig or error}")
    finally:
        engine.dispose()


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to standard output."""
    typer.echo(json.dumps(value, indent=2, default=str))


def garment_dict(garment: Garment) -> dict[str, Any]:
    """A garment as plain JSON-ready values (no image bytes)."""
    images = {}
    for kind in ImageKind:
        image = garment.image(kind)
        if image is not None:
            images[kind.value] = {
                "mime_type": image.mime_type,
                "width": image.width,
                "height": image.height,
                "bytes": image.byte_size,
                "sha256": image.sha256,
                **({"source": image.source.value} if image.source else {}),
            }
    return {
        "sku": garment.sku,
        "name": garment.name,
        "brand": garment.brand,
        "category": garment.category.value,
        "colour": garment.colour,
        "tags": list(garment.tags or []),
        "status": garment.status.value,
        "revision": garment.revision,
        "created_at": garment.created_at.isoformat(),
        "updated_at": garment.updated_at.isoformat(),
        "images": images,
    }
