"""Task registry: each task family registers itself where it is defined; a duplicate name raises."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}


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
    return _TASKS[name](**options)


def list_tasks() -> list[str]:
    _load_builtins()
    return sorted(_TASKS)
