"""Generate the Python gRPC stubs from proto/ into the client package, where the server
imports them too (run after editing a .proto).

    python -m tryon.server.gen_stubs            # rewrite the committed stubs
    python -m tryon.server.gen_stubs --check    # exit 1 if they are out of date

The stubs live in `tryon_client.stubs` (clients/python/tryon_client/stubs/), so that the
API contract ships in the client that needs no PyTorch and the server depends on it, not
the other way round. protoc writes `from tryon.v1 import tryon_pb2`, which would resolve
to this project's own `tryon` package; the one import line is rewritten to the stubs'
real place, and the descriptors keep their canonical file name `tryon/v1/tryon.proto`
(what reflection shows).

The check ignores the generator's own version stamps (the grpcio and protobuf versions
protoc writes into the stubs), so a newer grpcio-tools release does not mark unchanged
protos stale; the committed stamps are the oldest runtime versions the stubs accept.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPOSITORY / "proto"
STUBS = REPOSITORY / "clients" / "python" / "tryon_client" / "stubs"
STUBS_PACKAGE = "tryon_client.stubs"


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    """Every .proto under `root`, relative to it, in a stable order."""
    return sorted(path.relative_to(root) for path in root.rglob("*.proto"))


def generate(out: Path, root: Path = PROTO_ROOT) -> list[Path]:
    """Compile the protos under `root` into `out` (packages with __init__.py); return the
    files written, relative to `out`."""
    from grpc_tools import protoc

    protos = proto_files(root)
    if not protos:
        raise FileNotFoundError(f"no .proto files under {root}")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{root}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(root / proto) for proto in protos),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {[str(p) for p in protos]}")
        written = []
        for source in sorted(Path(tmp).rglob("*.py*")):
            relative = source.relative_to(tmp)
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_relocate(source.read_text(), protos))
            written.append(relative)
    for relative in written:
        for package in relative.parents:  # the file's folder up to `out` itself
            (out / package / "__init__.py").touch()
    return sorted(written)


def _relocate(code: str, protos: list[Path]) -> str:
    """Point imports of our own generated modules at the stubs package."""
    for proto in protos:
        package = ".".join(proto.parent.parts)
        code = code.replace(f"from {package} import", f"from {STUBS_PACKAGE}.{package} import")
    return code


# What protoc stamps into the stubs about the tools that made them, and what the check
# compares in its place.
GENERATOR_VERSION_STAMPS = (
    (re.compile(r"GRPC_GENERATED_VERSION = '[^']*'"), "GRPC_GENERATED_VERSION = <version>"),
    (re.compile(r"# Protobuf Python Version: \S*"), "# Protobuf Python Version: <version>"),
    (
        re.compile(r"(ValidateProtobufRuntimeVersion\(\s*\S+,)\s*\d+,\s*\d+,\s*\d+,"),
        r"\1 <version>,",
    ),
)


def without_version_stamps(code: str) -> str:
    """`code` with the grpcio/protobuf versions that protoc stamps into stubs blanked out."""
    for stamp, blank in GENERATOR_VERSION_STAMPS:
        code = stamp.sub(blank, code)
    return code


def stale_files(stubs: Path = STUBS, root: Path = PROTO_ROOT) -> list[str]:
    """The generated files that differ from, or are missing in, `stubs` (version stamps
    aside)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh, root)
        generated = (path.relative_to(fresh) for path in fresh.rglob("*") if path.is_file())
        return sorted(
            str(relative)
            for relative in generated
            if not _same_code(stubs / relative, fresh / relative)
        )


def _same_code(committed: Path, fresh: Path) -> bool:
    """Whether `committed` exists and holds `fresh`'s code, version stamps aside."""
    return committed.exists() and without_version_stamps(
        committed.read_text()
    ) == without_version_stamps(fresh.read_text())


def main(argv: list[str] | None = None) -> int:
    """Regenerate the stubs, or with --check report whether they are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"stubs out of date: {stale}; run python -m tryon.server.gen_stubs")
            return 1
        print("stubs are up to date")
        return 0
    for path in generate(STUBS):
        print(f"wrote {STUBS / path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
