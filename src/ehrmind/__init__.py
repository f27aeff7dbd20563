"""ehrmind: adapt LLMs to clinical reasoning over EHRs (SFT warm-up, then RL with verifiable rewards).

Importing the package is cheap: torch, transformers and TRL load only inside the functions that need them.
"""

from ehrmind.registry import get_task, list_tasks, register_task
from ehrmind.types import Example, Score

__version__ = "0.1.0"
__all__ = ["Example", "Score", "get_task", "list_tasks", "register_task", "__version__"]
