"""`python -m tryon.cli`: the `tryon` command without its console script."""

from tryon.cli import main

main()
