"""`python -m ehrmind …` is the same as the `ehrmind` console script (useful under `accelerate launch`)."""

from ehrmind.cli import main

main()
