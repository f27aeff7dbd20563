"""Issues #13 and #27: tasks own their knowledge. Generic layers (the core modules, eval/, train/, rewards/,
generate/, cli/) name no task, no task's own metadata field and no analysis's keys; only the contract reads and
writes the output contract; the Task core stays small."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import ehrmind
from ehrmind import get_task, list_tasks
from ehrmind.tasks.base import gold_completion

SRC = Path(ehrmind.__file__).parent
CONTRACT_PARSERS = {"check_contract", "find_json_with_key"}


def _builtin_tasks() -> list[str]:
    return [n for n in list_tasks() if type(get_task(n)).__module__.startswith("ehrmind.")]


def _task_words() -> set[str]:
    """Registered task names, and metadata fields only one task declares (shared fields such as `category`
    are the generic contract)."""
    tasks = [type(get_task(n)) for n in _builtin_tasks()]
    fields = Counter(f for t in tasks for f in {*t.groups.by, *t.groups.rows})
    own = {f for f, count in fields.items() if count == 1}
    return {t.name for t in tasks} | own | {"calculator_id"}


def _constants(path: Path) -> list[tuple[int, str]]:
    """String constants used as values in the code (docstrings left out: prose may mention a benchmark)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _generic_modules() -> list[Path]:
    """Every module but the families' (tasks/<family>/), the programs and the integrations: the core modules,
    eval/, train/, rewards/, generate/ and cli/."""
    outside = ("programs", "integrations")
    return [
        p
        for p in sorted(SRC.rglob("*.py"))
        if p.relative_to(SRC).parts[0] not in outside
        and not (p.relative_to(SRC).parts[0] == "tasks" and len(p.relative_to(SRC).parts) > 2)
    ]


def _analysis_words() -> set[str]:
    """The names of the built-in families' analyses (their blocks in metrics.json) and the keys they write."""
    words = {a.name for n in _builtin_tasks() for a in get_task(n).analyses}
    return words | {"official_correct", "official_accuracy", "numbers_in_note_rate", "by_output_type"}


def _identifiers(path: Path) -> list[tuple[int, str]]:
    """Names, attributes, parameters and definitions in the code."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg):
            out.append((node.lineno, node.arg))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((node.lineno, node.name))
    return out


def test_generic_layers_name_no_task():
    """Issue #27: the core modules, eval/, train/, rewards/, generate/ and cli/ name no task, no field only
    one task declares and no analysis's keys — in string values, identifiers and parameter names."""
    words = _task_words() | _analysis_words()
    assert {"medcalc", "trec_ct", "ehrshot", "calculator_name", "reasoning_checks"} <= words
    knowledge = {"medcalc", "trec_ct", "ehrshot", "calculator", "calculators", "one_shot_file"}
    found = [
        f"{path.relative_to(SRC)}:{line}: {value!r}"
        for path in _generic_modules()
        for line, value in _constants(path)
        if value in words
    ]
    found += [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in _generic_modules()
        for line, name in _identifiers(path)
        if any(word in name.lower().split("_") or name.lower() == word for word in knowledge)
    ]
    assert found == [], "a task's knowledge belongs in its folder (an analysis or a hook):\n" + "\n".join(
        found
    )


def test_the_task_core_is_small():
    """Issue #27: `Task` has at most 16 public names — what a family declares, the five methods it writes,
    and load, build_data, render, verify (an instance adds its options and its configured contract)."""
    from ehrmind.tasks.base import Task

    names = {n for n in (*vars(Task), *Task.__annotations__) if not n.startswith("_")}
    assert names == {
        "name", "version", "Options", "options", "contract", "groups", "analyses",  # what a family declares
        "records_to_examples", "task_text", "user_prompt", "judge", "gold_value",  # what it writes
        "load", "build_data", "render", "verify",
    }  # fmt: skip
    assert len(names) <= 16
    abstract = set(Task.__abstractmethods__)
    assert abstract == {"records_to_examples", "task_text", "user_prompt", "judge", "gold_value"}


def test_only_the_contract_writes_the_format_sentence():
    """Issue #27: the `<think>`/`<answer>` instruction is written by the contract, nowhere else."""
    found = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).as_posix() not in ("contract.py", "parsing.py")
        for line, value in _constants(path)
        if "<answer> </answer> tags" in value or "<answer></answer> tags" in value
    ]
    assert found == [], "write it with the task's Contract:\n" + "\n".join(found)


def test_only_the_contract_parses_the_output_contract():
    users = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix() in ("parsing.py", "contract.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom)
                else [node.id]
                if isinstance(node, ast.Name)
                else [node.attr]
                if isinstance(node, ast.Attribute)
                else []
            )
            users += [f"{path.relative_to(SRC)}:{node.lineno}: {n}" for n in names if n in CONTRACT_PARSERS]
    assert users == [], (
        "read completions with the task's contract (`task.contract.read`, or the Score it gives):\n"
        + "\n".join(users)
    )


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, tmp_path, synthetic_csv):
    """Issue #13, item 4: one error base class the CLI maps to a message (exit 2); a TypeError or KeyError
    from a bug is not dressed up as a user error."""
    from typer.testing import CliRunner

    import ehrmind.eval.runner as runner
    from ehrmind.cli import app
    from ehrmind.errors import ConfigError, DataError, UserError
    from ehrmind.generate.openai_compat import EndpointError

    assert all(issubclass(e, UserError) for e in (ConfigError, DataError, EndpointError))
    args = ["score", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(tmp_path / "s")]
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "1", "completion": "x"}\n')
    bad = CliRunner().invoke(app, [*args, "--predictions", str(preds), "--task-option", "colour=red"])
    assert bad.exit_code == 2 and "task 'medcalc' has no option colour" in bad.output

    def bug(*a, **k):
        raise TypeError("a bug")

    monkeypatch.setattr(runner, "run_score", bug)
    crashed = CliRunner().invoke(app, [*args, "--predictions", str(preds)])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, TypeError)


def test_task_specific_commands_belong_to_the_task(tmp_path, synthetic_csv):
    """`ehrmind audit` asks the task (MedCalc has a calculator knowledge base); another task says it has none."""
    from typer.testing import CliRunner

    from ehrmind.cli import app

    r = CliRunner().invoke(
        app, ["audit", "--task", "trec_ct", "--data", str(synthetic_csv), "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "task 'trec_ct' has no knowledge base" in r.output
    assert "tasks that have one: medcalc" in r.output
    # no --task: the one family that declares a label audit (MedCalc's calculators)
    r = CliRunner().invoke(app, ["audit", "--data", str(synthetic_csv), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "audit.csv").exists() and (tmp_path / "a" / "summary.md").exists()


def test_the_python_api_is_what_the_commands_call(tmp_path, synthetic_csv):
    """`ehrmind.evaluate` / `ehrmind.score` write what `ehrmind eval` / `score` write, here with a scripted
    generator through `Backend(factory=…)` (the commands take transformers, vLLM or an endpoint)."""
    import json

    import ehrmind
    from ehrmind.generate.scripted import ScriptedGenerator

    task = ehrmind.get_task("medcalc")
    gold = {task.user_prompt(ex): gold_completion(task, ex, "r") for ex in task.load(synthetic_csv)}
    gen = ScriptedGenerator(lambda messages, k, seed: gold[messages[-1]["content"]])
    backend = ehrmind.Backend(factory=lambda model, settings: gen)
    metrics = ehrmind.evaluate("medcalc", synthetic_csv, "scripted", tmp_path / "e", limit=5, backend=backend)
    assert metrics["n"] == 5 and metrics["accuracy"] == 1.0 and len(gen.calls) == 1
    preds = tmp_path / "e" / "predictions.jsonl"
    again = ehrmind.score("medcalc", synthetic_csv, preds, tmp_path / "s")
    assert again["accuracy"] == 1.0 and again["n"] == 5
    assert (
        json.loads((tmp_path / "e" / "metrics.json").read_text())["run"]["environment"]["backend"]
        == "scripted"
    )


def test_one_generation_settings_type_checks_the_sampling_rule():
    """eval, diagnose, matrix, rationales, serve and Python share `GenerationSettings`; it refuses several
    greedy samples when made, so no command repeats the rule."""
    import pytest

    from ehrmind.errors import ConfigError
    from ehrmind.generate.settings import ROLLOUT_TEMPERATURE, GenerationSettings

    with pytest.raises(ConfigError, match="greedy decoding are identical"):
        GenerationSettings(samples=4)
    for bad in (
        {"batch_size": 0},
        {"max_new_tokens": 0},
        {"samples": True},
        {"top_p": 0},
        {"temperature": -1},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            GenerationSettings(**bad)
    rollout = GenerationSettings.rollout(8, seed=3)
    assert (rollout.samples, rollout.temperature, rollout.top_p, rollout.seed) == (
        8,
        ROLLOUT_TEMPERATURE,
        0.95,
        3,
    )
    assert rollout.replace(samples=1, temperature=0.0).samples == 1
    classes = [
        f"{path.relative_to(SRC)}: {node.name}"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.startswith("Generation")
    ]
    assert classes == ["generate/settings.py: GenerationSettings"], classes


def test_one_output_folder_type_writes_every_run_record(tmp_path):
    """`runs.RunFolder` is the only writer of run.json: eval, score and rationales continue a folder only with
    the same settings, and a run that fails before its first result leaves no trace."""
    import pytest

    from ehrmind.errors import ConfigError, DataError
    from ehrmind.runs import RUN_INFO, RunFolder

    writers = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "runs.py"
        for line, value in _constants(path)
        if value == RUN_INFO
    ]
    assert writers == [], writers
    folder = RunFolder(tmp_path / "run", ("model", "seed"))
    assert not folder.path.exists()  # made when the run starts writing
    with pytest.raises(RuntimeError), folder.run({"model": "m", "seed": 0}, ["out.jsonl"]):
        raise RuntimeError("killed before any result")
    assert list(folder.path.iterdir()) == []
    with folder.run({"model": "m", "seed": 0}, ["out.jsonl"]):
        (folder / "out.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="different seed"):
        folder.check({"model": "m", "seed": 1})
    folder.check({"model": "m", "seed": 0, "other": 1})  # only the resume keys count
    folder.info_path.write_text("{not json")
    with pytest.raises(DataError, match="run record") as e:
        folder.stored()
    assert str(folder.info_path) in str(e.value)


def test_prediction_rows_are_one_typed_record(synthetic_csv):
    """`Prediction` is what eval and score write: its line keeps the key order users' scripts read."""
    from ehrmind.eval.runner import prediction_row
    from ehrmind.types import Prediction

    task = get_task("medcalc")
    ex = task.load(synthetic_csv)[0]
    p = prediction_row(task, ex, 2, gold_completion(task, ex), finish_reason="stop", yes_probability=None)
    assert isinstance(p, Prediction) and p.score.correct and p.extra["category"] == ex.metadata["category"]
    row = p.to_dict()
    assert list(row)[:3] == ["id", "sample", "completion"] and row["sample"] == 2
    assert list(row)[-1] == "finish_reason" and "yes_probability" not in row
    assert {**p.score.to_dict(), **p.extra}.items() <= row.items()
