"""The clinical calculator knowledge base: MedCalc-Bench's 55 calculators, each with its reference.

Importing this package registers every calculator module; look them up with `get_calculator(id)`.
"""

from ehrmind.tasks.medcalc.calculators.base import (
    CALCULATORS,
    CalcResult,
    Calculator,
    calculator,
    get_calculator,
)

__all__ = ["CALCULATORS", "CalcResult", "Calculator", "calculator", "get_calculator", "load_all"]


def load_all() -> dict[int, Calculator]:
    """Import every calculator module in this package (each registers itself) and return the registry."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "units"):
            importlib.import_module(f"{__name__}.{info.name}")
    return CALCULATORS
