"""A fourth task family written as one folder (issue #13): body-mass index from a short note. Importing it
registers the task `toy_bmi`; nothing outside this folder knows about it (`tests/test_fourth_task.py`)."""

from example_family.task import BmiTask

__all__ = ["BmiTask"]
