"""ehrmind: adapt LLMs to clinical reasoning over EHRs (SFT warm-up, then RL with verifiable rewards).

Importing the package is cheap: torch, transformers and TRL load only inside the functions that need them.
The Python API (`evaluate`, `score`, `diagnose`, `matrix`, `Backend`, `GenerationSettings`) is what the
commands call (`ehrmind.api`).
"""

from typing import Any

from ehrmind.registry import get_task, list_tasks, register_task
from ehrmind.types import Example, Score

__version__ = "0.1.0"
_API = ("evaluate", "score", "diagnose", "matrix", "Backend", "GenerationSettings")
__all__ = ["Example", "Score", "get_task", "list_tasks", "register_task", "__version__", *_API]


def __getattr__(name: str) -> Any:  # the API on first use, so `import ehrmind` stays light
    if name in _API:
        import ehrmind.api as api

        return getattr(api, name)
    raise AttributeError(f"module 'ehrmind' has no attribute {name!r}")
