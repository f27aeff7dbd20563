"""`python -m ehrmind.cli …`, as `python -m ehrmind …`."""

from ehrmind.cli import main

main()
