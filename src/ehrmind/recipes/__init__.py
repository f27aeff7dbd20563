"""Recipes shipped inside the package (the demo's); user recipes live in the repository's recipes/."""

from pathlib import Path

DEMO = Path(__file__).with_name("demo.yaml")
