"""The `ehrmind` command line. Subcommands parse options, call one function, and say where outputs went."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup


class _Commands(TyperGroup):
    """Every command's user errors (`ehrmind.errors.UserError`: bad data, bad settings, an endpoint that
    refuses) end as one `error:` line and exit code 2, wherever they are raised; anything else is a bug and
    keeps its traceback."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from ehrmind.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as e:
            _fail(e)


app = typer.Typer(
    cls=_Commands,
    name="ehrmind",
    help="Adapt LLMs to clinical reasoning over EHRs: SFT warm-up, then RL with verifiable rewards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

TaskOpt = Annotated[str, typer.Option("--task", help="Registered task name, e.g. medcalc.")]
DataOpt = Annotated[
    str, typer.Option("--data", help="Local CSV/Parquet/JSONL file or a Hugging Face dataset id.")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of a Hub dataset (default: test).")]
ModeOpt = Annotated[
    str,
    typer.Option(
        "--mode",
        help="Prompt mode: reasoning (think + answer), direct (answer only) or one-shot (medcalc; with "
        "--task-option one_shot_file=PATH).",
    ),
]
PrefillOpt = Annotated[
    bool, typer.Option("--prefill/--no-prefill", help="Prefill the assistant turn with the paper's opening.")
]
TaskOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task-option", help="Task-specific option key=value, e.g. max_prompt_tokens=3072 (repeatable)."
    ),
]


BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="hf (transformers, this process), vllm (vLLM offline engine, GPU; pip install 'ehrmind[vllm]') "
        "or openai (an OpenAI-compatible endpoint at --url). Default: openai with --url, else hf.",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="An OpenAI-compatible endpoint (…/v1); --model is then the served name."),
]
ApiKeyEnvOpt = Annotated[
    str | None, typer.Option("--api-key-env", help="Environment variable holding the endpoint's API key.")
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        help="With --url: requests in flight at once (each asks for all samples of one prompt; keep "
        "--batch-size >= this).",
    ),
]

TemplateKwargOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--chat-template-kwarg",
        help="A chat-template variable key=value, e.g. enable_thinking=false for Qwen3 (repeatable).",
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option("--revision", help="Hub branch, tag or commit of --model (hf, vllm).")
]
RemoteCodeOpt = Annotated[
    bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (hf, vllm).")
]


def _backend(backend, url, api_key_env, concurrency, device, template_kwargs, revision, remote, **more):  # type: ignore[no-untyped-def]
    """The backend the shared generation flags ask for (one rule for eval, diagnose and matrix)."""
    from ehrmind.generate.backends import Backend

    return Backend.choose(
        backend,
        url=url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        device=device,
        chat_template_kwargs=_key_values(template_kwargs or []),
        revision=revision,
        trust_remote_code=remote,
        **more,
    )


class _ListOptions(TyperCommand):
    """A command whose repeatable options also take several values after one flag: `--models A B`."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        names = {o for p in self.params if getattr(p, "multiple", False) for o in getattr(p, "opts", ())}
        spread: list[str] = []
        current = None
        for arg in args:
            if arg.startswith("-"):
                current = arg if arg in names else None
                spread.append(arg)
            elif current is not None and spread[-1] != current:
                spread += [current, arg]
            else:
                spread.append(arg)
        return super().parse_args(ctx, spread)


def _setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _summary(metrics: dict, out: Path) -> None:
    acc, ci = metrics.get("accuracy"), metrics.get("ci95")
    acc_s = "—" if acc is None else f"{100 * acc:.1f}%"
    ci_s = "" if not ci else f" (95% CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f})"
    typer.echo(
        f"accuracy {acc_s}{ci_s} over n={metrics.get('n')}; format errors {metrics.get('format_error_rate')}"
    )
    if metrics.get("official_accuracy") is not None:  # the benchmark's own extraction, where the task has one
        typer.echo(
            f"official accuracy {100 * metrics['official_accuracy']:.1f}% "
            f"({metrics.get('n_official_disagree', 0)} rows where the two verdicts differ)"
        )
    typer.echo(f"wrote {out / 'predictions.jsonl'}, {out / 'metrics.json'}, {out / 'report.md'}")


@app.command("eval")
def eval_cmd(
    task: TaskOpt,
    data: DataOpt,
    model: Annotated[str, typer.Option("--model", help="Local model folder or Hugging Face model id.")],
    out: OutOpt,
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N examples.")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Completions per example (K).")] = 1,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1024,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    split: SplitOpt = None,
    mode: ModeOpt = "reasoning",
    prefill: PrefillOpt = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")] = "cpu",
    task_option: TaskOptionOpt = None,
    backend: BackendOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 1,
    chat_template_kwarg: TemplateKwargOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: RemoteCodeOpt = False,
    logprobs: Annotated[
        bool,
        typer.Option(
            "--logprobs",
            help="With --url: ask the endpoint for the answer token's top log-probabilities, so a yes/no "
            "task's AUROC ranks by the model's P(yes) (vLLM or ehrmind serve; one more request per answer).",
        ),
    ] = False,
) -> None:
    """Generate with a model (transformers, vLLM or an endpoint) and score with the task's verifier
    (resumable)."""
    _setup_logging()
    from ehrmind.api import evaluate

    chosen = _backend(
        backend,
        url,
        api_key_env,
        concurrency,
        device,
        chat_template_kwarg,
        revision,
        trust_remote_code,
        logprobs=logprobs,
    )
    metrics = evaluate(
        task,
        data,
        model,
        out,
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        split=split,
        limit=limit,
        mode=mode,
        prefill=prefill,
        task_options=_key_values(task_option or []),
        backend=chosen,
    )
    _summary(metrics, out)


@app.command("score")
def score_cmd(
    task: TaskOpt,
    data: DataOpt,
    predictions: Annotated[
        Path, typer.Option("--predictions", help='JSONL lines {"id": …, "completion": …}.')
    ],
    out: OutOpt,
    split: SplitOpt = None,
    mode: ModeOpt = "reasoning",
    prefill: PrefillOpt = False,
    task_option: TaskOptionOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the results an existing --out folder holds.")
    ] = False,
) -> None:
    """Score completions produced elsewhere (an API model, another framework)."""
    _setup_logging()
    from ehrmind.api import score

    metrics = score(
        task,
        data,
        predictions,
        out,
        split=split,
        mode=mode,
        prefill=prefill,
        task_options=_key_values(task_option or []),
        overwrite=overwrite,
    )
    _summary(metrics, out)


ModesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mode",
        help="Prompt mode(s), reported side by side: reasoning (default), direct, one-shot (with --one-shot-file).",
    ),
]
OneShotOpt = Annotated[
    Path | None,
    typer.Option(
        "--one-shot-file",
        help="One-shot exemplars: MedCalc-Bench's one_shot_finalized_explanation.json (or a one-row-per-calculator CSV).",
    ),
]


@app.command("diagnose", cls=_ListOptions)
def diagnose_cmd(
    task: TaskOpt,
    data: DataOpt,
    out: OutOpt,
    k: Annotated[int, typer.Option("--k", help="The k of pass@k (and the default samples per item).")] = 8,
    model: Annotated[
        str | None, typer.Option("--model", help="Local model folder or Hugging Face model id.")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Diagnose existing samples (an eval predictions.jsonl) instead."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Diagnose only the first N examples.")] = None,
    samples: Annotated[int | None, typer.Option("--samples", help="Completions per item, >= k.")] = None,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.6,
    top_p: Annotated[float, typer.Option("--top-p")] = 0.95,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1024,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    split: SplitOpt = None,
    mode: ModesOpt = None,
    prefill: PrefillOpt = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")] = "cpu",
    backend: BackendOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 1,
    chat_template_kwarg: TemplateKwargOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: RemoteCodeOpt = False,
    task_option: TaskOptionOpt = None,
    one_shot_file: OneShotOpt = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Verdict: misapplied when (reliable) pass@k >= this.")
    ] = 0.5,
    reliable_rule: Annotated[
        str,
        typer.Option(
            "--reliable-rule",
            help="Reliable pass@k: 'paper' (the EHRMind paper's categories and thresholds) or 'ehrmind' "
            "(--min-correct, --max-entropy, --max-distinct, --guessable).",
        ),
    ] = "paper",
    min_correct: Annotated[
        int, typer.Option("--min-correct", help="Reliable pass@k (ehrmind rule): correct samples per item.")
    ] = 2,
    max_entropy: Annotated[
        float, typer.Option("--max-entropy", help="Reliable pass@k: highest answer entropy (bits) per item.")
    ] = 0.9,
    max_distinct: Annotated[
        int, typer.Option("--max-distinct", help="Guessable groups: at most this many distinct gold answers.")
    ] = 10,
    guessable: Annotated[
        list[str] | None, typer.Option("--guessable", help="Name the guessable groups instead (repeatable).")
    ] = None,
    plan_by: Annotated[
        str | None, typer.Option("--plan-by", help="category or calculator_name (default: the finest).")
    ] = None,
    plan_examples: Annotated[
        int, typer.Option("--plan-examples", help="SFT rows per group with missing knowledge.")
    ] = 20,
    misapplied_examples: Annotated[
        int, typer.Option("--misapplied-examples", help="SFT rows per group with misapplied knowledge.")
    ] = 0,
    min_items: Annotated[
        int, typer.Option("--min-items", help="Groups with fewer items get 'too few items' and no plan rows.")
    ] = 5,
    format_threshold: Annotated[
        float,
        typer.Option(
            "--format-threshold",
            help="Below --threshold, a group with at least this share of unreadable samples gets the verdict "
            "'format' (cannot follow the output format), planned as format rows; 0 turns it off.",
        ),
    ] = 0.5,
) -> None:
    """pass@k per category (and calculator): missing vs misapplied knowledge, a report and an SFT plan."""
    _setup_logging()
    from ehrmind.eval.diagnose import DiagnosisSettings, GenerationOptions, run_diagnose

    settings = DiagnosisSettings(
        k=k,
        threshold=threshold,
        reliable_rule=reliable_rule,
        min_correct=min_correct,
        max_entropy=max_entropy,
        max_distinct=max_distinct,
        guessable=guessable,
        plan_by=plan_by,
        plan_examples=plan_examples,
        misapplied_examples=misapplied_examples,
        min_items=min_items,
        format_threshold=format_threshold or None,
    )
    generation = GenerationOptions(
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        device=device,
        backend=_backend(
            backend,
            url,
            api_key_env,
            concurrency,
            device,
            chat_template_kwarg,
            revision,
            trust_remote_code,
        ),
    )
    diagnosis = run_diagnose(
        task,
        data,
        out,
        settings,
        model=model,
        predictions=predictions,
        modes=mode or ["reasoning"],
        split=split,
        limit=limit,
        generation=generation,
        prefill=prefill,
        task_options=_key_values(task_option or []),
        one_shot_file=one_shot_file,
    )
    overall, by = diagnosis["overall"], diagnosis["plan_by"]
    from collections import Counter

    verdicts = Counter(b["verdict"] for b in diagnosis[f"by_{by}"].values())
    extra = "".join(
        f"; {what} in {verdicts[v]}"
        for v, what in (("format", "cannot follow the output format"), ("too few items", "too few items"))
        if verdicts[v]
    )
    typer.echo(
        f"pass@1 {100 * overall['pass_at_1']:.1f}%, pass@{k} {100 * overall['pass_at_k']:.1f}% over "
        f"n={overall['n']}; knowledge missing in {verdicts['missing']} group(s) by {by}{extra}"
    )
    typer.echo(f"wrote {out / 'diagnosis.json'}, {out / 'report.md'}, {out / 'sft_plan.yaml'}")


@app.command("matrix", cls=_ListOptions)
def matrix_cmd(
    models: Annotated[list[str], typer.Option("--models", help="Model folders or Hub ids: --models A B …")],
    tasks: Annotated[list[str], typer.Option("--tasks", help="Task names: --tasks medcalc ehrshot …")],
    data: Annotated[list[str], typer.Option("--data", help="Each task's data: --data TASK=PATH …")],
    out: OutOpt,
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate only the first N examples.")] = None,
    split: SplitOpt = None,
    mode: ModesOpt = None,
    one_shot_file: OneShotOpt = None,
    samples: Annotated[int, typer.Option("--samples", help="Completions per example (K).")] = 1,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1024,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")] = "cpu",
    backend: BackendOpt = None,
    url: UrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 1,
    chat_template_kwarg: TemplateKwargOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: RemoteCodeOpt = False,
    task_option: Annotated[
        list[str] | None,
        typer.Option(
            "--task-option", help="TASK:key=value, e.g. trec_ct:max_prompt_tokens=1500 (repeatable)."
        ),
    ] = None,
) -> None:
    """Evaluate every model on every task: a table and a heatmap of accuracy and each task's main metric."""
    _setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.eval.matrix import run_matrix

    paths = _task_pairs(data, "=", "--data TASK=PATH")
    missing = [t for t in tasks if t not in paths]
    extra = [t for t in paths if t not in tasks]
    if missing or extra:
        raise ConfigError(
            f"--data must give one path per --tasks entry (missing: {missing or 'none'}; not in --tasks: "
            f"{extra or 'none'})"
        )
    options: dict[str, dict[str, object]] = {}
    for t, kv in _task_pairs(task_option or [], ":", "--task-option TASK:key=value", unique=False):
        options.setdefault(t, {}).update(_key_values([kv]))
    run_matrix(
        models,
        {t: paths[t] for t in tasks},
        out,
        modes=mode or ["reasoning"],
        limit=limit,
        split=split,
        samples=samples,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        backend=_backend(
            backend,
            url,
            api_key_env,
            concurrency,
            device,
            chat_template_kwarg,
            revision,
            trust_remote_code,
        ),
        task_options=options,
        one_shot_file=one_shot_file,
    )
    typer.echo(
        f"wrote {out / 'matrix.md'}, {out / 'matrix.json'}, {out / 'matrix.png'} (runs in {out / 'runs'})"
    )


def _task_pairs(items: list[str], sep: str, form: str, unique: bool = True):  # type: ignore[no-untyped-def]
    """`TASK<sep>value` strings to a dict (unique) or a list of pairs."""
    from ehrmind.errors import ConfigError

    pairs = []
    for item in items:
        name, found, value = item.partition(sep)
        if not found or not name.strip() or not value.strip():
            raise ConfigError(f"expected {form}, got {item!r}")
        pairs.append((name.strip(), value.strip()))
    if not unique:
        return pairs
    names = [n for n, _ in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{form}: task(s) given twice: {', '.join(dupes)}")
    return dict(pairs)


@app.command("data")
def data_cmd(
    task: TaskOpt,
    source: Annotated[
        str, typer.Option("--source", help="Local file or folder, or a Hugging Face dataset id.")
    ],
    out: OutOpt,
    split: SplitOpt = None,
    labeler: Annotated[
        str | None, typer.Option("--labeler", help="Labeler name (tasks that build labels).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for splits and sampling.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--set", help="Task-specific option key=value (repeatable).")
    ] = None,
) -> None:
    """Write the task's canonical Examples as JSONL plus a manifest."""
    _setup_logging()
    from ehrmind.registry import get_task
    from ehrmind.snapshot import MANIFEST

    options = _key_values(option or [])
    for key, value in (("split", split), ("labeler", labeler), ("seed", seed)):
        if value is not None:
            options[key] = value
    manifest = get_task(task).build_data(source, out, **options)
    files = ", ".join(str(out / name) for name in manifest["files"])
    typer.echo(f"{manifest['n']} examples; wrote {files} and {out / MANIFEST}")


def _key_values(pairs: list[str]) -> dict[str, object]:
    """`key=value` strings to a dict; values parsed as YAML scalars (numbers, booleans, lists)."""
    from ehrmind.train.recipe import apply_overrides

    return apply_overrides({}, pairs)


RecipeOpt = Annotated[Path, typer.Option("--recipe", help="Recipe YAML (see recipes/).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe key: key=value or trl.key=value (repeatable)."),
]


TrainTaskOpt = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="Task of a flat TRL / open-r1 config (or its ehrmind_task: key); replaces an ehrmind recipe's task.",
    ),
]


def _print_translation(translation) -> None:  # type: ignore[no-untyped-def]
    """The table of a flat TRL config's keys: their key → our key, with what happened and why."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{translation.source} → ehrmind {translation.stage} recipe", title_justify="left")
    for name in ("their key", "our key", "status", "note"):
        table.add_column(name, no_wrap=name != "note", overflow="fold")
    for k in translation.keys:
        style = {"refused": "red", "ignored": "yellow", "dropped": "yellow"}.get(k.status)
        table.add_row(k.theirs, k.ours or "—", k.status, k.note, style=style)
    console = Console()
    console.width = max(console.width, 140)
    console.print(table)


def _train(
    stage: str,
    recipe: Path,
    overrides: list[str] | None,
    plans: list[Path] | None = None,
    task: str | None = None,
) -> None:
    _setup_logging()
    from ehrmind.train.flat import TranslationError
    from ehrmind.train.recipe import load_recipe

    try:
        # validated before any model loads; a flat TRL / open-r1 config is translated first
        r = load_recipe(recipe, overrides or [], stage=stage, plans=plans, task=task)  # type: ignore[arg-type]
        if r.imported is not None:
            _print_translation(r.imported)
        if stage == "sft":
            from ehrmind.train.sft import run_sft as run
        else:
            from ehrmind.train.rl import run_rl as run
        out = run(r)
    except TranslationError as e:  # the table first, then the error (the central handler's)
        _print_translation(e.translation)
        raise
    typer.echo(f"wrote model, checkpoints and ehrmind_run.json to {out}")


@app.command("sft")
def sft_cmd(
    recipe: RecipeOpt,
    option: SetOpt = None,
    plan: Annotated[
        list[Path] | None,
        typer.Option(
            "--plan",
            help="Recipe fragment merged before --set, e.g. the sft_plan.yaml of `ehrmind diagnose`.",
        ),
    ] = None,
    task: TrainTaskOpt = None,
) -> None:
    """SFT warm-up (TRL SFTTrainer); rerun the same command to resume from the last checkpoint. A flat TRL /
    open-r1 SFT config is translated (table of what went where) and run."""
    _train("sft", recipe, option, plan, task)


@app.command("rl")
def rl_cmd(recipe: RecipeOpt, option: SetOpt = None, task: TrainTaskOpt = None) -> None:
    """GRPO with verifiable rewards (TRL GRPOTrainer); rerun the same command to resume. A flat TRL / open-r1
    GRPO config is translated (table of what went where) and run."""
    _train("rl", recipe, option, task=task)


@app.command("import-recipe")
def import_recipe_cmd(
    config: Annotated[
        Path,
        typer.Argument(help="Flat TRL / open-r1 YAML: model_name_or_path, dataset_name, TRL config fields."),
    ],
    stage: Annotated[str, typer.Option("--stage", help="sft or rl: the TRL config the file is for.")],
    out: Annotated[Path, typer.Option("--out", help="The ehrmind recipe (YAML) to write.")],
    task: TrainTaskOpt = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop", help="Leave a key of the file out on purpose, e.g. reward_funcs (repeatable)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
) -> None:
    """Translate a flat TRL / open-r1 config into an ehrmind recipe; print their key → our key for every key."""
    from ehrmind.errors import ConfigError
    from ehrmind.train.flat import TranslationError, read_flat, write_recipe

    if stage not in ("sft", "rl"):
        _fail(ConfigError(f"--stage must be sft or rl, got {stage!r}"))
    try:
        translation = read_flat(config, stage=stage, task=task, drop=drop or [])  # type: ignore[arg-type]
        _print_translation(translation)
        path = write_recipe(translation, out, overwrite=overwrite)
    except TranslationError as e:
        _print_translation(e.translation)
        raise
    typer.echo(f"wrote {path}; run it with `ehrmind {stage} --recipe {path}`")


@app.command("rationales")
def rationales_cmd(
    task: TaskOpt,
    data: DataOpt,
    out: OutOpt,
    teacher_url: Annotated[
        str | None,
        typer.Option("--teacher-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    ] = None,
    teacher_model: Annotated[
        str | None, typer.Option("--teacher-model", help="Model name the endpoint serves.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable holding the API key.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Local model folder or Hub id (with --self).")
    ] = None,
    self_mode: Annotated[
        bool, typer.Option("--self", help="Rejection sampling from the model being trained (no gold hint).")
    ] = False,
    samples: Annotated[int, typer.Option("--samples", help="Attempts per example (K).")] = 1,
    keep_per_example: Annotated[
        int, typer.Option("--keep-per-example", help="Verified rationales kept per example (0 = all).")
    ] = 1,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 1024,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N examples.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")] = 120.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries on 429/5xx/no reply.")] = 5,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Parallel HTTP requests.")] = 1,
    split: SplitOpt = None,
    prefill: PrefillOpt = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, … (with --model)")] = "cpu",
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="With --model: hf (default) or vllm (pip install 'ehrmind[vllm]'); --teacher-url is openai.",
        ),
    ] = None,
    task_option: TaskOptionOpt = None,
) -> None:
    """SFT warm-up rationales from a teacher endpoint or the model itself (--self), kept only if verified.

    Teacher mode gives the gold answer and asks for the reasoning; --self samples without it (rejection
    sampling). Writes rationales.jsonl (SFT data), attempts.jsonl and summary.json; resumable."""
    _setup_logging()
    from ehrmind.generate.hf import GenerationSettings
    from ehrmind.registry import get_task
    from ehrmind.train.rationales import make_generator, run_rationales

    t = get_task(task, prefill=prefill, **_key_values(task_option or []))
    examples = t.load(data, split)[:limit]
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    generator, mode = make_generator(
        teacher_url=teacher_url,
        teacher_model=teacher_model,
        api_key_env=api_key_env,
        model=model,
        self_mode=self_mode,
        settings=settings,
        device=device,
        timeout=timeout,
        max_retries=max_retries,
        concurrency=concurrency,
        backend=backend,
    )
    summary = run_rationales(
        t,
        examples,
        generator,
        out,
        samples=samples,
        mode=mode,
        keep_per_example=keep_per_example,
        batch_size=batch_size,
        info={"data": data, "limit": limit, "seed": seed},
    )
    typer.echo(
        f"kept {summary['kept']} of {summary['attempts']} attempts ({summary['examples_with_rationale']} of "
        f"{summary['n_scorable']} examples); dropped {summary['dropped_by_reason'] or 0}"
    )
    typer.echo(f"wrote {out / 'rationales.jsonl'}, {out / 'attempts.jsonl'}, {out / 'summary.json'}")


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Option("--model", help="Local model folder or Hugging Face model id.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 = any free port).")] = 8000,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Default when a request has no max_tokens.")
    ] = 1024,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps …")] = "cpu",
    name: Annotated[
        str | None, typer.Option("--name", help="Model name to report (default: --model).")
    ] = None,
    max_batch: Annotated[
        int,
        typer.Option(
            "--max-batch",
            help="Most sequences generated together from concurrent requests (1: one at a time).",
        ),
    ] = 8,
    batch_wait_ms: Annotated[
        float,
        typer.Option("--batch-wait-ms", help="A batch closes when no request came for this long (ms)."),
    ] = 5.0,
) -> None:
    """A minimal OpenAI-compatible server (/v1/chat/completions, /v1/models) over a local model; concurrent
    requests are generated in batches."""
    _setup_logging()
    from ehrmind.generate.hf import GenerationSettings
    from ehrmind.generate.server import serve

    def ready(url: str) -> None:
        typer.echo(f"serving {name or model} at {url} (Ctrl-C to stop)")

    try:
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        serve(
            model,
            host,
            port,
            settings,
            device=device,
            model_name=name,
            on_ready=ready,
            max_batch=max_batch,
            batch_wait_ms=batch_wait_ms,
        )
    except (ValueError, OSError) as e:  # bad settings, port in use
        _fail(e)


@app.command("audit")
def audit_cmd(
    data: DataOpt,
    out: OutOpt,
    task: Annotated[
        str, typer.Option("--task", help="A task with a knowledge base to recompute labels with (medcalc).")
    ] = "medcalc",
    corrected: Annotated[
        Path | None,
        typer.Option("--corrected", help="Physician-corrected labels (Unique ID, Ground Truth Answer, …)."),
    ] = None,
) -> None:
    """Recompute every row with the task's knowledge base (MedCalc's calculators); report agreement and
    disagreement causes."""
    _setup_logging()
    from ehrmind.registry import get_task

    written = get_task(task).audit(data, out, corrected=corrected)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


@app.command("export-predictions")
def export_predictions_cmd(
    task: TaskOpt,
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions", help="An eval or score folder, or its predictions.jsonl (scored rows)."
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="meds (ehrshot: meds-evaluation parquet) or trec (trec_ct: a run file)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    run_name: Annotated[
        str, typer.Option("--run-name", help="The run's name in a TREC run file.")
    ] = "ehrmind",
) -> None:
    """Write scored predictions in a format other tools read: MEDS-DEV / meds-evaluation, trec_eval."""
    _setup_logging()
    from ehrmind.errors import DataError
    from ehrmind.io import read_jsonl
    from ehrmind.registry import get_task

    t = get_task(task)
    if fmt not in t.export_formats:
        _fail(ValueError(f"task {task} exports {', '.join(t.export_formats) or 'no format'}, not {fmt!r}"))
    path = predictions / "predictions.jsonl" if predictions.is_dir() else predictions
    rows = read_jsonl(path)
    unscored = next((i for i, r in enumerate(rows, 1) if "correct" not in r), None)
    if unscored is not None:
        raise DataError(
            "not a scored prediction row: score completions first (ehrmind score)", file=path, row=unscored
        )
    counts = t.export_predictions(fmt, rows, out, run_name=run_name)
    typer.echo(f"wrote {out} ({', '.join(f'{k} {v}' for k, v in counts.items())})")


@app.command("export-verl")
def export_verl_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder (train/val parquet, run_verl.sh).")],
    task: Annotated[
        str | None, typer.Option("--task", help="Registered task (default: the recipe's).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Training data: file, snapshot or Hub id (default: the recipe's)."),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="RL recipe whose GRPO settings the launch script mirrors.")
    ] = None,
    option: SetOpt = None,
    split: SplitOpt = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share held out for validation, by patient/note group.")
    ] = 0.1,
    val_data: Annotated[
        str | None, typer.Option("--val-data", help="Validation data instead of a held-out share.")
    ] = None,
    val_split: Annotated[str | None, typer.Option("--val-split", help="Split of a Hub --val-data.")] = None,
    group_by: Annotated[
        str | None, typer.Option("--group-by", help="Metadata field the held-out split keeps together.")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Prompt mode (default: the recipe's).")] = None,
    prefill: Annotated[
        bool | None,
        typer.Option("--prefill/--no-prefill", help="Prefill the assistant turn (default: the recipe's)."),
    ] = None,
    task_option: TaskOptionOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model path (default: the recipe's); its tokenizer counts prompts."),
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs per node the batch sizes assume.")] = 8,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Split seed (default: the recipe's, else 0).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty --out folder.")] = False,
) -> None:
    """verl RL export: train/val parquet and run_verl.sh mirroring the recipe's GRPO settings (docs/verl.md)."""
    _setup_logging()
    from ehrmind.errors import ConfigError
    from ehrmind.registry import get_task
    from ehrmind.train.verl_launch import export_verl, split_train_val

    r = None
    if recipe is not None:
        from ehrmind.train.recipe import load_recipe

        r = load_recipe(recipe, option or [], stage="rl")
    elif option:
        raise ConfigError("--set overrides a recipe; give --recipe")
    task_name, data_src = task or (r.task if r else None), data or (r.data if r else None)
    if not task_name or not data_src:
        raise ConfigError("give --task and --data, or a --recipe that names them")
    opts = r.task_options if r else None
    t = get_task(
        task_name,
        mode=mode or (opts.mode if opts else "reasoning"),
        prefill=prefill if prefill is not None else (opts.prefill if opts else False),
        **({"system_prompt": opts.system_prompt} if opts and opts.system_prompt else {}),
        **({"reward_weights": r.reward_weights.model_dump()} if r else {}),
        **_key_values(task_option or []),
    )
    split_seed = seed if seed is not None else (r.seed if r else 0)
    examples = t.load(data_src, split or (r.split if r else None))
    if r and r.limit:
        examples = examples[: r.limit]
    if val_data:
        train, val, grouped = examples, t.load(val_data, val_split), "--val-data"
    else:
        train, val, grouped = split_train_val(
            examples, val_fraction, split_seed, group_by, fields=t.split_fields
        )
    info = export_verl(
        t,
        train,
        val,
        out,
        trl=r.trl if r else {},
        model=model or (r.model if r else None),
        gpus=gpus,
        seed=split_seed,
        output_dir=r.output_dir if r else None,
        max_prompt_tokens=r.max_prompt_tokens if r else None,
        template_kwargs=getattr(r, "chat_template_kwargs", None) or None,
        overwrite=overwrite,
        record={
            "task": t.name,
            "task_version": t.version,
            "data": data_src,
            "val": grouped,
            "recipe": str(recipe) if recipe else None,
            "seed": split_seed,
            "prefill": t.prefill_text,
        },
    )
    lengths = info["prompt_lengths"]
    typer.echo(
        f"wrote {out}: train.parquet ({info['n_train']} rows), val.parquet ({info['n_val']} rows, held out by "
        f"{grouped}), run_verl.sh, export.json"
        + (
            f"; dropped {info['dropped_prompt_too_long']} prompts over max_prompt_tokens"
            if info["dropped_prompt_too_long"]
            else ""
        )
    )
    typer.echo(f"prompt length {lengths['max_tokens']} tokens, {lengths['how']}")
    for key, value in info["overrides"].items():
        typer.echo(f"  {key}={str(value).lower() if isinstance(value, bool) else value}")
    typer.echo(f"install verl: {info['verl_install']}; run: MODEL=... bash {out / 'run_verl.sh'}")


@app.command("tiny-model")
def tiny_model_cmd(
    out: OutOpt,
    size: Annotated[str, typer.Option("--size", help="tiny or small")] = "tiny",
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Build a small random causal LM with a chat template, locally (no hub), for tests and the demo."""
    _setup_logging()
    from ehrmind.train.tiny import build_tiny_model

    if size not in ("tiny", "small"):
        _fail(ValueError(f"--size must be tiny or small, got {size!r}"))
    path = build_tiny_model(out, size=size, seed=seed)
    typer.echo(f"wrote model and tokenizer to {path}")


@app.command("demo")
def demo_cmd(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (runs/demo, or runs/study).")
    ] = None,
    study: Annotated[
        bool,
        typer.Option("--study", help="Missing vs misapplied knowledge: SFT→RL vs either alone (longer)."),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Model and training seed (with --study: the general model's). Default 0."
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="With --study: training seeds, comma-separated (default 0,1,2)."),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Compare stages on the development split, not the held-out one (for choosing settings).",
        ),
    ] = False,
    data_seed: Annotated[
        int,
        typer.Option(
            "--data-seed",
            help="Seed of the synthetic notes of every split: a fresh value gives fresh held-out items. Default 0.",
        ),
    ] = 0,
) -> None:
    """The main job on the embedded default: CPU, a small local model, no network."""
    _setup_logging()
    from ehrmind.io import output_folder

    split = "dev" if dev else "heldout"
    output_folder(out or Path("runs/study" if study else "runs/demo"), create=False)
    if study:
        from ehrmind.errors import ConfigError
        from ehrmind.programs.study import StudySettings, run_study

        try:
            chosen = tuple(int(x) for x in seeds.split(",")) if seeds else (0, 1, 2)
        except ValueError:
            _fail(ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}"))
        settings = StudySettings(
            seeds=chosen, general_seed=0 if seed is None else seed, evaluate_on=split, data_seed=data_seed
        )
        report = run_study(out or Path("runs/study"), settings)
    else:
        from ehrmind.programs.demo import DemoSettings, run_demo

        report = run_demo(
            out or Path("runs/demo"),
            DemoSettings(evaluate_on=split, data_seed=data_seed),
            seed=0 if seed is None else seed,
        )
    typer.echo(f"finished; report: {report}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
