"""Shared fixture: a throw-away test CA and a C2PA signing certificate it issued."""

from __future__ import annotations

import pytest

from tryon.provenance.certificates import TestAuthority, create_test_authority


@pytest.fixture(scope="session")
def authority() -> TestAuthority:
    """A fresh ES256 test root and a signing certificate with the C2PA key usage."""
    return create_test_authority()
