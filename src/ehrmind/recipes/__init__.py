"""Recipes shipped inside the package (the demo's and the study's); user recipes live in recipes/."""

from pathlib import Path

DEMO = Path(__file__).with_name("demo.yaml")
STUDY = Path(__file__).with_name("study.yaml")
