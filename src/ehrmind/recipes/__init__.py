"""Recipes shipped inside the package (the demo's, the study's and the demo's on a pretrained model); user
recipes live in recipes/."""

from pathlib import Path

DEMO = Path(__file__).with_name("demo.yaml")
STUDY = Path(__file__).with_name("study.yaml")
PRETRAINED = Path(__file__).with_name("pretrained.yaml")
