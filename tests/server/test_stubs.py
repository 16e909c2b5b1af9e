"""The committed stubs match proto/, and a proto edit is noticed."""

from __future__ import annotations

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
