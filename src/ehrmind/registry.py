"""Task registry: each task family registers itself where it is defined; a duplicate name raises."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import TYPE_CHECKING, Any

from ehrmind.errors import ConfigError

if TYPE_CHECKING:
    from ehrmind.tasks.base import Task, TaskOptions

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


ENTRY_POINTS = "ehrmind.tasks"
"""The entry-point group through which an installed package adds task families: in its pyproject.toml,
`[project.entry-points."ehrmind.tasks"] toy_bmi = "my_pkg.task"` (a module that registers its Task, or the
Task class itself as `my_pkg.task:BmiTask`)."""
_loaded = False


def _load_builtins() -> None:
    """Import every subpackage of `ehrmind.tasks` and every `ehrmind.tasks` entry point of the installed
    packages (each registers its Task); on first lookup only, so `import ehrmind` stays cheap. An entry point
    that fails to load is a ConfigError naming it and its package."""
    global _loaded
    if _loaded:
        return
    import ehrmind.tasks

    for info in pkgutil.iter_modules(ehrmind.tasks.__path__):
        if info.ispkg:  # a family registers its Task in its task module (the package may import it lazily)
            family = f"ehrmind.tasks.{info.name}"
            has_task = importlib.util.find_spec(f"{family}.task") is not None
            importlib.import_module(f"{family}.task" if has_task else family)
    load_entry_points(ENTRY_POINTS, "task")
    _loaded = True


def load_entry_points(group: str, what: str) -> None:
    """Import what installed packages declare in entry-point `group` (their modules register themselves); one
    that fails is a ConfigError naming it and its package, not another package's traceback."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=group):
        try:
            ep.load()
        except Exception as e:  # another package's code: say whose
            dist = getattr(ep.dist, "name", "?")
            raise ConfigError(
                f"{what} entry point {ep.name!r} = {ep.value!r} of package {dist} failed to load: "
                f"{type(e).__name__}: {e}"
            ) from None


def _import_class(spec: str) -> type[Task]:
    """`pkg.module:Class`: a Task class outside ehrmind's packages (on the Python path), imported by name."""
    from ehrmind.tasks.base import Task

    module_name, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise UnknownTask(f"cannot import task {spec!r} ({type(e).__name__}: {e})") from None
    if not (isinstance(obj, type) and issubclass(obj, Task)):
        raise UnknownTask(f"{spec!r} is not a Task class")
    if not obj.name:  # a class that did not register itself: registered under its module:Class spelling
        register_task(spec)(obj)
    return obj


class UnknownTask(ConfigError, KeyError):
    """No task is registered under that name: a user error (ConfigError), and a KeyError for lookups."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_task(name: str, /, **options: Any) -> Task:
    """An instance of the task registered as `name`, configured with `options` (prompt mode, prefill, …),
    checked against the task's options model (`Task.Options`)."""
    return task_class(name)(**options)


def text_options(name: str) -> set[str]:
    """The options of task `name` typed as plain text (a system prompt): the CLI keeps their values as
    written instead of reading them as YAML."""
    fields = task_class(name).Options.model_fields
    return {n for n, f in fields.items() if f.annotation in (str, str | None)}


def task_class(name: str) -> type[Task]:
    """The class registered as `name`, or imported as `pkg.module:Class` (a family outside the package, on
    the Python path); an UnknownTask naming the known ones otherwise."""
    _load_builtins()
    if ":" in name and name not in _TASKS:
        return _import_class(name)
    if name not in _TASKS:
        raise UnknownTask(f"unknown task {name!r}; known tasks: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def check_options(cls: type[Task], options: dict[str, Any], where: str = "") -> dict[str, Any]:
    """`options` validated by the task's model: the given ones, typed. A wrong name or value is a one-line
    ConfigError naming the task and the field (`where` prefixes it, e.g. `task_options.` in a recipe)."""
    checked = validate_options(cls, options, where)
    return {k: getattr(checked, k) for k in options}


def validate_options(cls: type[Task], options: dict[str, Any], where: str = "") -> TaskOptions:
    """The task's options model made from `options` (what `Task.__init__` keeps), as `check_options` checks
    them."""
    from pydantic import ValidationError

    model = cls.Options
    not_names = [k for k in options if not isinstance(k, str)]
    if not_names:
        raise ConfigError(f"task {cls.name!r}: option name {where}{display_name(not_names[0])} is not text")
    renamed = sorted(set(options) & set(model.renamed))
    if renamed:
        raise ConfigError(
            f"task {cls.name!r}: option {where}{renamed[0]} was renamed: {model.renamed[renamed[0]]}"
        )
    unknown = sorted(set(options) - set(model.model_fields))
    if unknown and model.model_config.get("extra") != "allow":
        named = ", ".join(where + display_name(u) for u in unknown[:MAX_NAMED])
        more = f" (and {len(unknown) - MAX_NAMED:,} more)" if len(unknown) > MAX_NAMED else ""
        raise ConfigError(
            f"task {cls.name!r} has no option {named}{more}; its options: {', '.join(task_options(cls)) or 'none'}"
        )
    try:
        checked = model.model_validate(options)
    except ValidationError as e:
        first = e.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule over several options (a model validator)
            raise ConfigError(f"task {cls.name!r} {where.rstrip('.') or 'options'}: {msg}") from None
        field = ".".join(str(p) for p in first["loc"][:1])
        raise ConfigError(f"task {cls.name!r} option {where}{field}: {msg}") from None
    return checked


MAX_NAMED = 5
"""Unknown names an error lists (a file of 60,000 unknown keys gets a line, not a page)."""


def display_name(name: object, chars: int = 60) -> str:
    """A key or option name as a one-line error shows it: as written when it is a short printable name,
    else quoted (a newline in it would break the line) and cut (it may be pasted text)."""
    text = name if isinstance(name, str) and name.isprintable() else repr(name)
    return text if len(text) <= chars else f"{text[: chars - 3]}..."


def task_options(cls: type[Task]) -> list[str]:
    """The options a task takes (its options model's fields: prompt mode, prefill, and the task's own)."""
    return list(cls.Options.model_fields)


def list_tasks() -> list[str]:
    _load_builtins()
    return sorted(_TASKS)
