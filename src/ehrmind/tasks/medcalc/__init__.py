"""MedCalc-Bench: medical calculations from patient notes (55 calculators, 7 categories)."""

from ehrmind.tasks.medcalc.task import MedCalcTask

__all__ = ["MedCalcTask"]
