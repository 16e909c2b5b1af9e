"""``python -m catalog``: the same CLI as the ``catalog`` console script."""

from __future__ import annotations

from catalog.cli import main

main()
