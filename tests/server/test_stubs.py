"""The committed stubs match proto/, and a proto edit is noticed."""

from __future__ import annotations

import re
import shutil

from tryon.server.gen_stubs import PROTO_ROOT, STUBS, stale_files


def test_committed_stubs_are_generated_from_the_current_proto():
    stale = stale_files()
    assert stale == [], f"run `python -m tryon.server.gen_stubs`: {stale} are out of date"


def test_an_edited_proto_makes_the_stubs_stale(tmp_path):
    root = tmp_path / "proto"
    shutil.copytree(PROTO_ROOT, root)
    proto = root / "tryon" / "v1" / "tryon.proto"
    proto.write_text(proto.read_text() + "\nmessage Added { string note = 1; }\n")
    assert "tryon/v1/tryon_pb2.py" in stale_files(STUBS, root)


def test_stubs_from_another_grpcio_tools_release_are_not_stale(tmp_path):
    """A new grpcio-tools release changes only the version stamps it writes into the stubs;
    unchanged protos must not fail the check (CI installs the newest release)."""
    stubs = tmp_path / "gen"
    shutil.copytree(STUBS, stubs, ignore=shutil.ignore_patterns("__pycache__"))
    grpc_stub = stubs / "tryon" / "v1" / "tryon_pb2_grpc.py"
    code = grpc_stub.read_text()
    grpc_stub.write_text(
        re.sub(r"GRPC_GENERATED_VERSION = '[^']*'", "GRPC_GENERATED_VERSION = '9.99.0'", code)
    )
    message_stub = stubs / "tryon" / "v1" / "tryon_pb2.py"
    code = message_stub.read_text()
    code = re.sub(r"Protobuf Python Version: \S+", "Protobuf Python Version: 99.1.2", code)
    code = re.sub(r"(Domain\.PUBLIC,\s*)\d+,\s*\d+,\s*\d+,", r"\g<1>99,\n    1,\n    2,", code)
    message_stub.write_text(code)
    assert "99.1.2" in message_stub.read_text()
    assert stale_files(stubs) == []
    message_stub.write_text(code.replace("tryon.v1.TryOnRequest", "tryon.v1.Renamed"))
    assert stale_files(stubs) == ["tryon/v1/tryon_pb2.py"]
