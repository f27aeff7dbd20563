"""What you train is what you run: a model folder ehrmind trained carries the prompt it was trained with
(`ehrmind_run.json`), and eval, diagnose, matrix and rationales render with it unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehrmind import get_task
from ehrmind.cli import app
from ehrmind.cli.common import key_values, task_option_values
from ehrmind.errors import DataError
from ehrmind.generate.backends import Backend
from ehrmind.generate.scripted import ScriptedGenerator
from ehrmind.tasks.medcalc.prompts import REASONING_SYSTEM
from ehrmind.trained import TrainedPrompt, choose_options
from test_trec_ct_data import make_source

runner = CliRunner()
SYSTEM = "Reason inside <think> </think>: one line per criterion; then answer."


def trained_folder(root: Path, task: str, options: dict, **recipe) -> Path:
    """A folder as `ehrmind sft` leaves it, as far as prompts go: its run record's resolved recipe."""
    root.mkdir(parents=True, exist_ok=True)
    dumped = get_task(task).Options(**options).model_dump(mode="json")  # as Recipe.model_dump writes it
    record = {"recipe": {"stage": "sft", "task": task, "task_options": dumped, **recipe}}
    (root / "ehrmind_run.json").write_text(json.dumps(record))
    return root


def ehrshot_rows(path: Path) -> Path:
    rows = [
        {"id": f"p{i}", "timeline": f"2020-01-0{i} lab creatinine 1.{i}", "question": "Will AKI occur?",
         "label": i % 2, "category": "lab_aki"}
        for i in range(1, 5)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# Each family with the options its training would set; the prompts of `eval` with no option must be the
# training prompts (checked against the task built from the recipe's options, as training builds it).
FAMILIES = [
    ("medcalc", {"mode": "reasoning", "prefill": True, "system_prompt": SYSTEM}),
    ("medcalc", {"mode": "direct", "system_prompt": SYSTEM}),
    ("trec_ct", {"prompt_token_budget": 600, "prefill": "Looking at the criteria:\n<think>"}),
    ("ehrshot", {"mode": "direct", "system_prompt": "Answer yes or no."}),
]


@pytest.mark.parametrize("task,options", FAMILIES)
def test_eval_without_options_renders_the_training_prompt(tmp_path, synthetic_csv, task, options):
    import ehrmind

    data = {
        "medcalc": lambda: synthetic_csv,
        "trec_ct": lambda: make_source(tmp_path / "src"),
        "ehrshot": lambda: ehrshot_rows(tmp_path / "e.jsonl"),
    }[task]()
    folder = trained_folder(tmp_path / "sft", task, options)
    gen = ScriptedGenerator(lambda m, k, s: "x")
    backend = Backend(factory=lambda model, settings: gen)
    metrics = ehrmind.evaluate(task, data, str(folder), tmp_path / "e", limit=3, backend=backend)
    trained = get_task(task, **options)  # what training rendered
    expected = [trained.render(ex) for ex in trained.load(str(data))[:3]]
    assert [m for call in gen.calls for m in call] == expected
    run = metrics["run"]
    assert run["trained_prompt"]["task"] == task and run["trained_prompt"]["overridden"] == {}
    assert "Prompt: as trained" in (tmp_path / "e" / "report.md").read_text()
    # without the record, the defaults render another prompt: the test would catch a lost record
    plain = get_task(task)
    assert [plain.render(ex) for ex in plain.load(str(data))[:3]] != expected


def test_an_override_is_used_recorded_and_reported(tmp_path, synthetic_csv):
    import ehrmind

    folder = trained_folder(tmp_path / "sft", "medcalc", {"prefill": True, "system_prompt": SYSTEM})
    gen = ScriptedGenerator(lambda m, k, s: "x")
    backend = Backend(factory=lambda model, settings: gen)
    metrics = ehrmind.evaluate(
        "medcalc", synthetic_csv, str(folder), tmp_path / "e", limit=2, backend=backend, prefill=False
    )
    assert all(m[-1]["role"] == "user" and m[0]["content"] == SYSTEM for m in gen.calls[0])
    assert metrics["run"]["trained_prompt"]["overridden"] == {"prefill": {"trained": True, "used": False}}
    report = (tmp_path / "e" / "report.md").read_text()
    assert "**Prompt differs from training**" in report and "`prefill` trained true, used false" in report


def test_another_task_keeps_only_the_contract_shape():
    choice = choose_options  # the trained task's system prompt and budget do not apply to medcalc
    record = TrainedPrompt(
        record="r",
        task="trec_ct",
        options={"mode": "direct", "system_prompt": "S", "prompt_token_budget": 9},
    )
    assert record.options_for("medcalc") == {"mode": "direct"}
    assert record.options_for("trec_ct") == record.options
    assert choice("medcalc", None, {"mode": "reasoning"}).options == {"mode": "reasoning"}  # no record


def test_a_broken_record_is_an_error_naming_it(tmp_path):
    (tmp_path / "ehrmind_run.json").write_text("{not json")
    with pytest.raises(DataError, match="ehrmind_run.json"):
        TrainedPrompt.of(tmp_path)
    (tmp_path / "ehrmind_run.json").write_text(json.dumps({"recipe": {"stage": "sft"}}))
    with pytest.raises(DataError, match="no recipe with a task"):
        TrainedPrompt.of(tmp_path)
    assert TrainedPrompt.of("org/model") is None and TrainedPrompt.of(tmp_path / "none") is None


def test_a_resumed_eval_with_another_system_prompt_is_refused(tmp_path, synthetic_csv):
    import ehrmind
    from ehrmind.errors import ConfigError

    backend = Backend(factory=lambda model, settings: ScriptedGenerator(lambda m, k, s: "x"))
    args = ("medcalc", synthetic_csv, "org/model", tmp_path / "e")
    ehrmind.evaluate(*args, limit=2, backend=backend, task_options={"system_prompt": "A"})
    with pytest.raises(ConfigError, match="task_options"):
        ehrmind.evaluate(*args, limit=2, backend=backend, task_options={"system_prompt": "B"})


@pytest.mark.parametrize(
    "pairs,expected",
    [
        (["budget=3072"], {"budget": 3072}),  # numbers stay numbers
        (["flag=false"], {"flag": False}),  # booleans stay booleans
        (["xs=[1, 2]"], {"xs": [1, 2]}),  # lists stay lists
        (["s=Answer: a number only"], {"s": "Answer: a number only"}),  # prose with a colon, no quotes
        (["s=key: value"], {"s": "key: value"}),  # a would-be mapping is text unless in braces
        (["m={a: 1}"], {"m": {"a": 1}}),  # a mapping in braces
        (["s=it's [unbalanced"], {"s": "it's [unbalanced"}),  # not valid YAML: the text itself
    ],
)
def test_key_values(pairs, expected):
    assert key_values(pairs) == expected


def test_text_options_keep_the_value_as_written():
    values = task_option_values("medcalc", ["system_prompt=yes", "prefill=true"])
    assert values == {"system_prompt": "yes", "prefill": True}  # a text option is never read as YAML


def test_cli_eval_of_a_trained_folder_takes_a_plain_text_system_prompt(tmp_path, tiny_model, synthetic_csv):
    """The command line path: no YAML quotes needed, and the override is shown where the result is."""
    import shutil

    folder = tmp_path / "sft"
    shutil.copytree(tiny_model, folder)
    trained_folder(folder, "medcalc", {"system_prompt": SYSTEM})
    args = ["eval", "--task", "medcalc", "--data", str(synthetic_csv), "--model", str(folder)]
    args += ["--limit", "2", "--max-new-tokens", "4", "--out", str(tmp_path / "e")]
    r = runner.invoke(app, [*args, "--task-option", "system_prompt=Answer: the value, then stop."])
    assert r.exit_code == 0, r.output
    run = json.loads((tmp_path / "e" / "metrics.json").read_text())["run"]
    assert run["task_options"] == {"system_prompt": "Answer: the value, then stop."}
    assert run["trained_prompt"]["overridden"]["system_prompt"]["trained"] == SYSTEM


def test_diagnose_and_matrix_prompt_each_model_as_it_was_trained(tmp_path, synthetic_csv):
    """No --mode: a trained folder is diagnosed in its trained mode with its system prompt; in a matrix each
    model has its own prompt (the untrained one the task's default)."""
    import ehrmind

    folder = trained_folder(tmp_path / "sft", "medcalc", {"mode": "direct", "system_prompt": SYSTEM})
    seen: dict[str, list] = {}

    def factory(model, settings):
        gen = ScriptedGenerator(lambda m, k, s: '<answer>{"answer": 1}</answer>')
        seen.setdefault(model, []).append(gen)
        return gen

    backend = Backend(factory=factory)
    ehrmind.diagnose(
        "medcalc", synthetic_csv, tmp_path / "d", model=str(folder), k=2, limit=2, backend=backend
    )
    prompts = [m for g in seen.pop(str(folder)) for call in g.calls for m in call]
    assert prompts and all(m[0]["content"] == SYSTEM for m in prompts)
    assert json.loads((tmp_path / "d" / "diagnosis.json").read_text())["mode"] == "direct"

    ehrmind.matrix(
        [str(folder), "org/base"], {"medcalc": synthetic_csv}, tmp_path / "m", limit=2, backend=backend
    )
    trained = [m for g in seen[str(folder)] for call in g.calls for m in call]
    base = [m for g in seen["org/base"] for call in g.calls for m in call]
    assert all(m[0]["content"] == SYSTEM for m in trained)
    assert all(m[0]["content"] == REASONING_SYSTEM for m in base)
    cells = json.loads((tmp_path / "m" / "matrix.json").read_text())["cells"]
    assert not any("prompt_overridden" in c for c in cells)
    # asking for another mode is an override the matrix report names
    ehrmind.matrix([str(folder)], {"medcalc": synthetic_csv}, tmp_path / "m2", limit=2, backend=backend,
                   modes=["reasoning"])  # fmt: skip
    assert "**Prompt differs from training** in 1 cell(s)" in (tmp_path / "m2" / "matrix.md").read_text()


def test_rationales_self_samples_with_the_training_prompt(tmp_path, tiny_model, synthetic_csv):
    import shutil

    folder = tmp_path / "sft"
    shutil.copytree(tiny_model, folder)
    trained_folder(folder, "medcalc", {"system_prompt": SYSTEM})
    args = ["rationales", "--task", "medcalc", "--data", str(synthetic_csv), "--out", str(tmp_path / "r")]
    args += ["--model", str(folder), "--self", "--limit", "2", "--max-new-tokens", "4"]
    assert (r := runner.invoke(app, args)).exit_code == 0, r.output
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["task_options"] == {"system_prompt": SYSTEM} and run["trained_prompt"]["overridden"] == {}


def test_eval_against_ehrmind_serve_prompts_the_served_folder_as_trained(tmp_path, tiny_model, synthetic_csv):
    """`ehrmind serve` publishes a trained folder's prompt in /v1/models; `eval --url` under any served name
    renders with it (another server publishes nothing: the task's defaults, no trained_prompt)."""
    import shutil
    import threading

    import ehrmind
    from ehrmind.generate.hf import HFGenerator
    from ehrmind.generate.server import make_server
    from ehrmind.generate.settings import GenerationSettings

    folder = tmp_path / "sft"
    shutil.copytree(tiny_model, folder)
    trained_folder(folder, "medcalc", {"system_prompt": SYSTEM, "prefill": True})
    gen = HFGenerator(str(folder), GenerationSettings(max_new_tokens=4))
    record = TrainedPrompt.of(folder)
    server = make_server(gen, "127.0.0.1", 0, model_name="my-sft", trained=record.recipe())
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        backend = Backend.choose(url=url)
        metrics = ehrmind.evaluate(
            "medcalc", synthetic_csv, "my-sft", tmp_path / "e", limit=2, max_new_tokens=4, backend=backend
        )
        assert metrics["run"]["task_options"] == {"system_prompt": SYSTEM} and metrics["run"]["prefill"]
        assert metrics["run"]["trained_prompt"]["record"] == f"{url}/models (my-sft)"
        server.backend.trained = None  # a server that says nothing about training
        plain = ehrmind.evaluate(
            "medcalc", synthetic_csv, "my-sft", tmp_path / "p", limit=2, max_new_tokens=4, backend=backend
        )
        assert "trained_prompt" not in plain["run"] and "task_options" not in plain["run"]
    finally:
        server.shutdown()
        server.server_close()
