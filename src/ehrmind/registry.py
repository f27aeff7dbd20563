"""Task registry: each task family registers itself where it is defined; a duplicate name raises."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}

DEFAULT_TASK = "medcalc"
"""The task a recipe that names none trains (the recipes of the EHRMind paper's main experiment)."""


def register_task(name: str):
    """Class decorator: `@register_task("medcalc")`."""

    def deco(cls: type[Task]) -> type[Task]:
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is already registered by {_TASKS[name].__module__}")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    """Import every subpackage of `ehrmind.tasks` (each registers its Task); on first lookup only, so
    `import ehrmind` stays cheap."""
    import ehrmind.tasks

    for info in pkgutil.iter_modules(ehrmind.tasks.__path__):
        if info.ispkg:
            importlib.import_module(f"ehrmind.tasks.{info.name}")


class UnknownTask(ConfigError, KeyError):
    """No task is registered under that name: a user error (ConfigError), and a KeyError for lookups."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_task(name: str, **options: Any) -> Task:
    """An instance of the task registered as `name`, configured with `options` (prompt mode, prefill, …)."""
    _load_builtins()
    if name not in _TASKS:
        raise UnknownTask(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}")
    cls = _TASKS[name]
    accepted = task_options(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown and not _takes_any(cls):
        raise ConfigError(
            f"task {name!r} has no option {', '.join(unknown)}; its options: {', '.join(accepted) or 'none'}"
        )
    return cls(**options)


def task_options(cls: type[Task]) -> list[str]:
    """The keyword options a task's constructor takes (prompt mode, prefill, and the task's own)."""
    import inspect

    params = inspect.signature(cls.__init__).parameters.values()
    return [
        p.name for p in params if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _takes_any(cls: type[Task]) -> bool:
    import inspect

    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def list_tasks() -> list[str]:
    _load_builtins()
    return sorted(_TASKS)
