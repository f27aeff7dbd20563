"""Issue #27: generators declare their capabilities (never probed), `generate` returns finish reasons with
the completions, and `ehrmind serve` builds its generator through eval's factory."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import ehrmind
import ehrmind.generate
from ehrmind.generate.backends import Backend
from ehrmind.generate.base import Capabilities, Generated, Generator
from ehrmind.generate.hf import HFGenerator
from ehrmind.generate.openai_compat import OpenAICompatGenerator
from ehrmind.generate.scripted import ScriptedGenerator
from ehrmind.generate.settings import GenerationSettings
from ehrmind.generate.vllm import VLLMGenerator

SRC = Path(ehrmind.__file__).parent
PROMPT = [{"role": "user", "content": "Compute the score."}]

BUILT_IN = {
    HFGenerator: Capabilities(
        seeds_prompts=True, seeds_calls=True, choice_logprobs=True, next_token_logprobs=True, token_usage=True
    ),
    VLLMGenerator: Capabilities(samples_per_request=True, seeds_prompts=True, choice_logprobs=True),
    OpenAICompatGenerator: Capabilities(samples_per_request=True, seeds_prompts=True, choice_logprobs=True),
    ScriptedGenerator: Capabilities(samples_per_request=True, seeds_prompts=True),
}
"""Every generator ehrmind ships, with what it declares."""

METHODS = ("choice_logprobs", "next_token_logprobs", "token_usage")
"""Capabilities that name a method the generator then has."""


def _generator_classes() -> set[type]:
    """Every class defined in ehrmind.generate's modules that has a `generate` method (the protocol aside)."""
    found = set()
    for info in pkgutil.iter_modules(ehrmind.generate.__path__, "ehrmind.generate."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency the module needs at import (none today)
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls is Generator or cls.__module__ != module.__name__:  # the protocol itself, imports
                continue
            if callable(getattr(cls, "generate", None)):
                found.add(cls)
    return found


def test_every_generator_in_the_package_is_in_the_table():
    assert _generator_classes() == set(BUILT_IN)


@pytest.mark.parametrize("cls", list(BUILT_IN), ids=lambda c: c.__name__)
def test_each_generator_declares_its_capabilities(cls):
    declared = cls.__dict__.get("capabilities")  # on the class itself, not found by probing an instance
    assert isinstance(declared, Capabilities) and declared == BUILT_IN[cls]
    assert callable(cls.generate) and callable(cls.describe)
    for name in METHODS:  # a declared method is there; one not declared is not pretended
        assert callable(getattr(cls, name, None)) == getattr(declared, name), name
    assert inspect.signature(cls.generate).return_annotation in (Generated, "Generated")
    if declared.seeds_calls:
        assert "call_seed" in inspect.signature(cls.generate).parameters
    if declared.samples_per_request or declared.seeds_prompts:
        assert "seeds" in inspect.signature(cls.generate).parameters


def test_capabilities_are_frozen_and_default_to_nothing():
    none = Capabilities()
    assert not any(dataclasses.asdict(none).values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        none.seeds_calls = True  # type: ignore[misc]


def test_an_endpoint_not_asked_for_logprobs_declares_none():
    off = OpenAICompatGenerator("http://127.0.0.1:9/v1", "m")
    on = OpenAICompatGenerator("http://127.0.0.1:9/v1", "m", logprobs=True)
    assert not off.capabilities.choice_logprobs and on.capabilities.choice_logprobs
    assert isinstance(off, Generator) and off.describe()["backend"] == "openai"


# ---------------------------------------------------------------- no module probes a generator


def _probes(path: Path, root: Path = SRC) -> list[str]:
    """`getattr(` / `hasattr(` calls whose object is a generator (a name or attribute naming one)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        if node.func.id not in ("getattr", "hasattr"):
            continue
        target = node.args[0]
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        if name in ("gen", "generator", "teacher") or name.endswith("generator"):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_probes_a_generator_for_a_capability():
    probes = [p for path in sorted(SRC.rglob("*.py")) for p in _probes(path)]
    assert probes == [], "read `generator.capabilities` instead:\n" + "\n".join(probes)
    stale = [
        f"{path.relative_to(SRC)}"
        for path in sorted(SRC.rglob("*.py"))
        if "last_finish_reasons" in path.read_text(encoding="utf-8")
    ]
    assert stale == [], "finish reasons come back from `generate` (`Generated.finish_reasons`)"


def test_the_scan_finds_a_probe(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f(generator, self):\n    return getattr(self.generator, 'seeds_calls', False)\n")
    assert _probes(probe, tmp_path) == ["probe.py:2: getattr(self.generator, 'seeds_calls', False)"]


# ---------------------------------------------------------------- finish reasons come back from generate


def test_scripted_generation_returns_finish_reasons_per_completion():
    gen = ScriptedGenerator(lambda m, k, s: f"{s}:{k}", finish_reason="length")
    got = gen.generate([PROMPT, PROMPT], n=2, seeds=[3, 4])
    assert got.completions == [["3:0", "3:1"], ["4:0", "4:1"]]
    assert got.finish_reasons == [["length", "length"], ["length", "length"]] and len(got) == 2
    assert not hasattr(gen, "last_finish_reasons")
    unknown = ScriptedGenerator(lambda m, k, s: "x", finish_reason=None).generate([PROMPT])
    assert unknown.finish_reasons == [[None]]


def test_a_generation_refuses_finish_reasons_of_another_shape():
    with pytest.raises(ValueError, match="finish reasons shaped"):
        Generated([["a", "b"]], [["stop"]])
    assert Generated.unexplained([["a"], ["b", "c"]]).finish_reasons == [[None], [None, None]]


def test_eval_records_the_finish_reasons_generate_returned(tmp_path, synthetic_csv):
    from ehrmind import get_task
    from ehrmind.eval.runner import run_eval, run_info

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:3]
    gen = ScriptedGenerator(lambda m, k, s: "cut short", finish_reason="length")
    info = run_info(task, examples, str(synthetic_csv), model="scripted", samples=1, seed=0)
    run_eval(task, examples, gen, tmp_path / "e", samples=1, batch_size=2, info=info, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "e" / "predictions.jsonl").read_text().splitlines()]
    assert [r["finish_reason"] for r in rows] == ["length"] * 3


# ---------------------------------------------------------------- `ehrmind serve` through eval's factory

TEMPLATE = {"enable_thinking": False}


def _trained(root: Path, tiny_model: Path, **recipe: Any) -> Path:
    """A copy of the tiny model with the run record `ehrmind sft` leaves, as far as prompts go."""
    shutil.copytree(tiny_model, root)
    record = {"recipe": {"stage": "sft", "task": "medcalc", "task_options": {}, **recipe}}
    (root / "ehrmind_run.json").write_text(json.dumps(record))
    return root


def test_serve_renders_a_trained_folder_with_its_template_variables(tmp_path, tiny_model):
    from ehrmind.generate.server import model_server
    from ehrmind.trained import SERVED_KEY

    folder = _trained(tmp_path / "sft", tiny_model, chat_template_kwargs=TEMPLATE)
    server = model_server(str(folder), port=0, settings=GenerationSettings(max_new_tokens=2))
    try:
        generator = server.backend.generator
        assert isinstance(generator, HFGenerator) and generator.chat_template_kwargs == TEMPLATE
        (entry,) = server.backend.models()["data"]
        assert entry["id"] == str(folder) and entry[SERVED_KEY]["chat_template_kwargs"] == TEMPLATE
    finally:
        server.server_close()
    # template variables given on the command line win, as with eval (`Backend.for_model`)
    given = Backend.choose(chat_template_kwargs={"enable_thinking": True})
    server = model_server(str(folder), port=0, backend=given, settings=GenerationSettings(max_new_tokens=2))
    try:
        assert server.backend.generator.chat_template_kwargs == {"enable_thinking": True}
    finally:
        server.server_close()


def test_serve_builds_through_the_backend_registry(tmp_path):
    from ehrmind.generate.server import model_server

    built: list[tuple[str, Any]] = []

    def factory(model: str, settings: GenerationSettings) -> ScriptedGenerator:
        built.append((model, settings))
        return ScriptedGenerator(lambda m, k, s: "x", name=model, settings=settings)

    server = model_server("any", port=0, backend=Backend(factory=factory), model_name="served")
    try:
        assert [m for m, _ in built] == ["any"] and server.backend.models()["data"][0]["id"] == "served"
        assert server.backend.complete({"messages": PROMPT, "temperature": 0})["choices"][0][
            "finish_reason"
        ] == ("stop")
    finally:
        server.server_close()


def test_serve_command_takes_evals_backend_flags(monkeypatch, tmp_path):
    from ehrmind.cli import app
    from ehrmind.generate import server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(server, "serve", lambda model, *a, **kw: seen.update(model=model, **kw))
    args = ["serve", "--model", "m", "--port", "0", "--revision", "abc"]
    args += ["--chat-template-kwarg", "enable_thinking=false"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    backend = seen["backend"]
    assert backend.name == "hf" and backend.revision == "abc" and backend.chat_template_kwargs == TEMPLATE
    result = CliRunner().invoke(app, ["serve", "--model", "m", "--concurrency", "2"])
    assert result.exit_code != 0 and "apply to an endpoint" in result.output
