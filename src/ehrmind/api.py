"""The Python API: what the `ehrmind` commands do, callable with the same names and defaults.

    import ehrmind
    metrics = ehrmind.evaluate("medcalc", "test.csv", "runs/sft", "runs/eval", samples=4, temperature=0.7)
    metrics = ehrmind.evaluate("medcalc", "test.csv", "Qwen/Qwen2.5-3B-Instruct", "runs/eval",
                               backend=ehrmind.Backend.choose("vllm"))
    metrics = ehrmind.score("medcalc", "test.csv", "completions.jsonl", "runs/score")
    diagnosis = ehrmind.diagnose("medcalc", "dev.csv", "runs/diag", model="runs/sft", k=8)
    grid = ehrmind.matrix(["runs/sft", "runs/rl"], {"medcalc": "test.csv"}, "runs/matrix",
                          generation=ehrmind.GenerationSettings(samples=4, temperature=0.7))

Each writes the same output folder as its command (resumable where the command is) and returns what the
command summarises. Bad input raises `ehrmind.errors.UserError` (ConfigError, DataError, EndpointError).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.generate.backends import Backend
from ehrmind.generate.settings import GenerationSettings


def evaluate(
    task: str,
    data: str | Path,
    model: str,
    out: str | Path,
    *,
    samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 1024,
    batch_size: int = 8,
    seed: int = 0,
    split: str | None = None,
    limit: int | None = None,
    mode: str | None = None,
    prefill: bool | str | None = None,
    task_options: dict[str, Any] | None = None,
    backend: Backend | None = None,
    generation: GenerationSettings | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`ehrmind eval`: generate `samples` completions per example with `model` (`backend`: transformers by
    default) and score them with the task's verifier; returns metrics.json's content. `generation` (a
    `GenerationSettings`) replaces the six generation keywords. A model folder ehrmind trained is prompted as
    in training (`ehrmind.trained`): `mode`, `prefill` and `task_options` left unset take its values, and one
    set to another value is recorded and reported."""
    from ehrmind.eval.runner import evaluate_examples
    from ehrmind.generate.backends import make_generator
    from ehrmind.io import output_folder
    from ehrmind.registry import get_task
    from ehrmind.trained import TrainedPrompt, choose_options

    backend = (backend or Backend()).for_model(model)
    output_folder(out, create=False)  # a file in the way fails before the model loads
    settings = generation or GenerationSettings(
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )  # checked here, before the model loads
    trained = TrainedPrompt.of(model, backend)
    prompt = choose_options(task, trained, given_options(mode, prefill, task_options), model)
    t = get_task(task, **prompt.options)
    examples = t.load(str(data), split)[:limit]
    return evaluate_examples(
        t,
        examples,
        str(data),
        make_generator(model, settings, backend),
        out,
        model=model,
        settings=settings,
        backend=backend,
        progress=progress,
        limit=limit,
        **prompt.record(),
    )


def given_options(
    mode: str | None, prefill: bool | str | None, task_options: dict[str, Any] | None
) -> dict[str, Any]:
    """The task options a caller set: mode and prefill join the others unless left None; given both ways with
    different values (`--mode direct --task-option mode=reasoning`), they are refused, not one dropped."""
    from ehrmind.errors import ConfigError

    given = task_options or {}
    for name, value in (("mode", mode), ("prefill", prefill)):
        if value is not None and name in given and given[name] != value:
            raise ConfigError(
                f"--{name} {value!r} and --task-option {name}={given[name]!r} disagree; give one"
            )
    return {
        **(task_options or {}),
        **({"mode": mode} if mode is not None else {}),
        **({"prefill": prefill} if prefill is not None else {}),
    }


def score(
    task: str,
    data: str | Path,
    predictions: str | Path,
    out: str | Path,
    *,
    split: str | None = None,
    mode: str | None = None,
    prefill: bool | str | None = None,
    task_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """`ehrmind score`: verify completions produced elsewhere (`{"id", "completion"}` lines); returns the
    metrics."""
    from ehrmind.eval.runner import run_record, run_score
    from ehrmind.registry import get_task

    t = get_task(task, **given_options(mode, prefill, task_options))
    examples = t.load(str(data), split)
    return run_score(
        t, examples, predictions, out, info=run_record(t, examples, str(data)), overwrite=overwrite
    )


def diagnose(
    task: str,
    data: str | Path,
    out: str | Path,
    *,
    model: str | None = None,
    predictions: str | Path | None = None,
    k: int = 8,
    modes: Sequence[str] | None = None,
    generation: GenerationSettings | None = None,
    backend: Backend | None = None,
    **options: Any,
) -> dict[str, Any]:
    """`ehrmind diagnose`: pass@k by group, missing vs misapplied knowledge, and an SFT plan. `generation`
    (default: `GenerationSettings.rollout(k)`, sampled as GRPO rollouts are) and `backend` say how
    completions are made; other keywords are `DiagnosisSettings` fields (threshold, reliable_rule, plan_by,
    …) or `run_diagnose`'s (split, limit, prefill, task_options, exemplars)."""
    import dataclasses

    from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose

    fields = {f.name for f in dataclasses.fields(DiagnosisSettings)}
    settings = DiagnosisSettings(k=k, **{n: v for n, v in options.items() if n in fields})
    rest = {n: v for n, v in options.items() if n not in fields}
    return run_diagnose(
        task, str(data), out, settings, model=model, predictions=predictions, modes=modes, generation=generation,
        backend=backend, **rest,
    )  # fmt: skip


def matrix(models: Sequence[str], data: dict[str, str], out: str | Path, **options: Any) -> dict[str, Any]:
    """`ehrmind matrix`: every model on every task (`data`: task → path); keywords as `eval.matrix.run_matrix`."""
    from ehrmind.eval.matrix import run_matrix

    return run_matrix(models, data, out, **options)
