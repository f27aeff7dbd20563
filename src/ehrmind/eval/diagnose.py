"""`ehrmind diagnose`: know why a model fails before training it.

Sample k answers per item (a pilot study on the training data). Where some samples are right (high pass@k) the
model has the knowledge and misapplies it: RL alone can fix that. Where none are (low pass@k) the knowledge is
missing and the SFT warm-up must inject it. The diagnosis is made per category (and per calculator for
MedCalc), reported with a plot, and turned into a recipe fragment (`sft_plan.yaml`) that `ehrmind sft --plan`
merges into the recipe. The rules (docs/diagnosis.md; every threshold is a `DiagnosisSettings` field):

- **pass@k** — per item, the unbiased estimator of Chen et al. (2021) from n >= k samples with c correct,
  1 - C(n-c, k) / C(n, k), computed as a product (no large binomials); averaged over items. pass@1 = c / n.
- **answer entropy** — Shannon entropy in bits of an item's sampled answers after `normalize_answer`:
  integer answers (integer gold) rounded as the official rule rounds them, other numbers to 3 significant
  digits (MedCalc's 5% tolerance is about that), text lower-cased with spaces collapsed, [weeks, days] as a
  pair; samples without a readable answer form one more outcome.
- **reliable pass@k** (`reliable_rule`) — guessing a few-valued answer makes plain pass@k high
  (1 - (1 - 1/m)^k for m equally likely answers), consistency does not come by chance. `paper` (default, the
  EHRMind paper's `src/eval/medcalc/analysis/cal_analysis.py:62-98` and `src/eval/matching/analysis/
  cal_analysis.py:46-77, 115-116`): on the items the task names with m possible answers (`PaperRules.reliable_m`:
  MedCalc diagnosis and severity m = 7, risk m = 21; TREC every item, m = 3) an item counts only with at least
  k // m + 2 correct samples and an answer entropy below 0.8 · ln m nats; every other item counts with its
  plain pass@k. Correct samples and the answers of the entropy are the paper's (`PaperRules.reading`: MedCalc
  `str(answer) == label` on those items and `check_correctness(str(answer))` on the others, so "2.0" or
  "2 points" is wrong for label 2 and is its own answer). `paper-thresholds`: the same items and thresholds
  on `Task.verify`'s verdicts and `normalize_answer`'s answers. `ehrmind` (option): on *guessable groups* an item counts (with its pass@k) only when at least
  `min_correct` samples are right and its answer entropy is at most `max_entropy` bits. Guessable groups:
  every gold answer is discrete (an integer, or a label such as "yes" or "eligible"; not a decimal, a date or
  a gestational age) and the group has at most `max_distinct` distinct gold answers, or as named
  (`guessable`).
- **verdict** — the group's score is reliable pass@k if it is guessable, else pass@k: `misapplied` when the
  score is >= `threshold`; below it, `format` when at least `format_threshold` of the group's samples give no
  readable answer (the model cannot follow the output format: what it knows is unmeasured), else `missing`.
  A group of fewer than `min_items` items is `too few items` whatever its score. pass@1 and pass@k carry a
  95% interval over items (the percentile bootstrap, widened to Wilson where it would collapse).
- **plan** — `sft_data.per_group`: `plan_examples` rows for every group (by `plan_by`: calculator or
  category) whose verdict is missing, `format_examples` for a `format` group (format-teaching rows),
  `misapplied_examples` for a misapplied one (0: RL handles them), none for `too few items`. When no group
  gets rows the plan is a format-only warm-up: `per_category_cap: format_examples`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.eval.report import RUN_FACTS, facts_rows
from ehrmind.generate.backends import Backend
from ehrmind.generate.settings import GenerationSettings
from ehrmind.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, output_folder, read_jsonl
from ehrmind.metrics import item_mean_ci
from ehrmind.parsing import parse_date
from ehrmind.tasks.analysis import Headline, PaperRules, attached, extra_headlines
from ehrmind.tasks.base import Task
from ehrmind.trained import PromptChoice, TrainedPrompt
from ehrmind.types import Example

log = logging.getLogger(__name__)

DIAGNOSIS = "diagnosis.json"
REPORT = "report.md"
PLOT = "diagnosis.png"
PLAN = "sft_plan.yaml"
ITEMS = "items.jsonl"
TOO_FEW = "too few items"
"""The verdict of a group with fewer than `min_items` items."""


RELIABLE_RULES = ("paper", "paper-thresholds", "ehrmind")
"""`DiagnosisSettings.reliable_rule` values."""
PAPER_THRESHOLDS = ("paper", "paper-thresholds")
"""The rules with the paper's items, thresholds (k // m + 2 correct, entropy < 0.8 · ln m nats) and scores."""


@dataclass
class DiagnosisSettings:
    """Thresholds of the diagnosis and of the plan; the defaults are documented in docs/diagnosis.md."""

    k: int = 8
    """The k of pass@k; every item needs at least k samples."""
    threshold: float = 0.5
    """Verdict: misapplied when the group's (reliable) pass@k >= threshold, else missing."""
    min_correct: int = 2
    """Reliable pass@k: at least this many correct samples per item."""
    max_entropy: float = 0.9
    """Reliable pass@k: at most this answer entropy (bits) per item; a 4/4 yes-no split is 1 bit."""
    max_distinct: int = 10
    """Auto guessable groups: discrete gold answers with at most this many distinct values."""
    guessable: list[str] | None = None
    """Group names to treat as guessable; None = decide from the gold answers (see the module docstring)."""
    reliable_rule: str = "paper"
    """Reliable pass@k by the EHRMind paper's rule as its code applies it (`paper`: its answer strings and
    correctness, `PaperRules.reading`), the paper's thresholds on ehrmind's verdicts and normalised answers
    (`paper-thresholds`, the `paper` rule before issue #29), or ehrmind's rule (`ehrmind`: `min_correct`,
    `max_entropy`, `max_distinct`, `guessable`); see the module docstring."""
    plan_by: str | None = None
    """One of the task's `plan_fields` (MedCalc: category or calculator_name); None = the finest."""
    plan_examples: int = 20
    """SFT rows per group whose knowledge is missing."""
    misapplied_examples: int = 0
    """SFT rows per group whose knowledge is misapplied (0: left to RL)."""
    format_examples: int = 2
    """Rows per group that cannot follow the output format, and, when no group gets rows, per category of a
    format-only warm-up."""
    min_items: int = 5
    """A group with fewer scorable items gets the verdict `too few items` and no plan rows (two items cannot
    tell missing from misapplied knowledge)."""
    format_threshold: float | None = 0.5
    """Below the threshold, a group whose share of samples without a readable answer is at least this gets
    the verdict `format`, not `missing`; None: never (the verdicts before issue #15)."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.reliable_rule not in RELIABLE_RULES:
            raise ConfigError(
                f"reliable_rule must be one of {', '.join(RELIABLE_RULES)}, got {self.reliable_rule!r}"
            )
        if self.reliable_rule == "ehrmind" and not 1 <= self.min_correct <= self.k:
            raise ConfigError(
                f"min_correct must be between 1 and k ({self.k}), got {self.min_correct}; "
                "with k=1 set min_correct=1"
            )
        if self.max_entropy < 0:
            raise ConfigError(f"max_entropy (bits) must be >= 0, got {self.max_entropy}")
        if self.max_distinct < 1:
            raise ConfigError(f"max_distinct must be >= 1, got {self.max_distinct}")
        if self.min_items < 1:
            raise ConfigError(f"min_items must be >= 1, got {self.min_items}")
        if self.format_threshold is not None and not 0 < self.format_threshold <= 1:
            raise ConfigError(f"format_threshold must be in (0, 1] (or None), got {self.format_threshold}")
        if self.plan_examples < 1 or self.misapplied_examples < 0 or self.format_examples < 1:
            raise ConfigError("plan_examples and format_examples must be >= 1, misapplied_examples >= 0")


# ---------------------------------------------------------------- the estimators


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms a large binomial coefficient."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n samples, got n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def normalize_answer(parsed: Any, *, integer: bool = False) -> Hashable | None:
    """The answer an entropy counts: numbers rounded (to an integer for integer answers, else to 3
    significant digits), text lower-cased with spaces collapsed, lists as tuples, a {"prediction": …} dict
    as its prediction; None when there is no readable answer."""
    if parsed is None:
        return None
    if isinstance(parsed, dict):
        if "prediction" in parsed:
            return normalize_answer(parsed["prediction"], integer=integer)
        return tuple(sorted((str(k), normalize_answer(v)) for k, v in parsed.items()))
    if isinstance(parsed, bool):
        return str(parsed).lower()
    if isinstance(parsed, (int, float)):
        if not math.isfinite(parsed):
            return None
        if integer:
            return int(round(parsed))  # Python's round, as the official MedCalc rule
        return float(f"{float(parsed):.3g}") + 0.0  # + 0.0: -0.0 and 0.0 are one answer
    if isinstance(parsed, (list, tuple)):
        return tuple(normalize_answer(v, integer=integer) for v in parsed)
    return " ".join(str(parsed).lower().split())


def answer_entropy(answers: Sequence[Hashable | None]) -> float:
    """Shannon entropy (bits) of the empirical distribution of normalised answers (None is one outcome)."""
    if not answers:
        return 0.0
    counts = Counter(answers)
    n = len(answers)
    h = -sum((m / n) * math.log2(m / n) for m in counts.values())
    return max(h, 0.0)


def is_reliable(c: int, entropy: float, settings: DiagnosisSettings, paper_m: int | None = None) -> bool:
    """The reliable-pass@k rule for one item (c correct samples, answer entropy in bits): enough correct samples
    and a consistent answer. Under the paper's rule `paper_m` is the item's number of possible answers
    (`PaperRules.reliable_m`); an item without one always counts (its plain pass@k)."""
    if settings.reliable_rule in PAPER_THRESHOLDS:
        if paper_m is None:
            return True
        return c >= settings.k // paper_m + 2 and entropy * math.log(2) < 0.8 * math.log(paper_m)
    return c >= settings.min_correct and entropy <= settings.max_entropy + 1e-12


def _discrete(gold: Any) -> bool:
    """An integer or a label (text that is not a date); decimals, dates and [weeks, days] are not."""
    if isinstance(gold, bool) or isinstance(gold, int):
        return True
    if isinstance(gold, str):
        return parse_date(gold)[0] is None
    return False


# ---------------------------------------------------------------- items and groups


def _paper_readings(
    rules: Sequence[PaperRules], task: Task, ex: Example, rs: Sequence[dict[str, Any]]
) -> list[tuple[str | None, bool]] | None:
    """Each sample as the paper's code reads it (`PaperRules.reading`), or None where the task has no reading."""
    if not rules:
        return None
    out = []
    for r in rs:
        completion = r.get("completion")
        if not isinstance(completion, str):
            raise ConfigError(
                f"prediction {r.get('id')!r} has no completion: reliable_rule 'paper' reads each sample's text "
                "(use reliable_rule 'paper-thresholds' for scored rows without it)"
            )
        read = rules[0].reading(task, ex, completion)
        if read is None:
            return None
        out.append(read)
    return out


def item_stats(
    task: Task,
    examples: Sequence[Example],
    rows: Sequence[dict[str, Any]],
    settings: DiagnosisSettings | None = None,
) -> list[dict[str, Any]]:
    """One entry per scorable item: n samples, c correct, answer entropy, distinct answers, gold, groups. With
    `reliable_rule: paper`, c and the answers are the paper's (`PaperRules.reading`) where the task has them."""
    by_id = {ex.id: ex for ex in examples}
    rules = attached(task, PaperRules)
    paper_m = rules[0].reliable_m if rules else (lambda ex: None)
    literal = settings is not None and settings.reliable_rule == "paper"
    samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("correct") is not None:
            samples[str(r["id"])].append(r)
    items = []
    for ex_id, rs in samples.items():
        ex = by_id.get(ex_id)
        if ex is None:
            raise ConfigError(f"prediction id {ex_id!r} is not in the data")
        gold = task.gold_value(ex)
        integer = isinstance(gold, int) and not isinstance(gold, bool)
        answers: list[Hashable | None] = [normalize_answer(r.get("parsed"), integer=integer) for r in rs]
        correct = [bool(r["correct"]) for r in rs]
        paper = _paper_readings(rules, task, ex, rs) if literal else None
        if paper is not None:  # the paper's entropy skips the samples its code cannot read
            answers = [a for a, _ in paper if a is not None]
            correct = [ok for _, ok in paper]
        items.append(
            {
                "id": ex_id,
                "n": len(rs),
                "c": sum(correct),
                "unread": sum(r.get("parsed") is None for r in rs),
                "entropy": answer_entropy(answers),
                "distinct_answers": len(set(answers)),
                "gold": normalize_answer(gold, integer=integer),
                "discrete": _discrete(gold),
                "paper_m": paper_m(ex),
                **{f: str(ex.metadata.get(f, "")) for f in task.groups.by},
            }
        )
    return items


def _curve_points(k: int) -> list[int]:
    points, j = [], 1
    while j < k:
        points.append(j)
        j *= 2
    return [*points, k]


def group_block(
    items: Sequence[dict[str, Any]], settings: DiagnosisSettings, name: str | None = None
) -> dict[str, Any]:
    """pass@1, pass@k, reliable pass@k, guessability, the score and the verdict for one group of items."""
    k = settings.k
    n = len(items)
    if n == 0:
        return {"n": 0}
    pk = [pass_at_k(it["n"], it["c"], k) for it in items]
    reliable = [
        p if is_reliable(it["c"], it["entropy"], settings, it.get("paper_m")) else 0.0
        for p, it in zip(pk, items, strict=True)
    ]
    if settings.reliable_rule in PAPER_THRESHOLDS:
        guessable = any(it.get("paper_m") is not None for it in items)
    elif settings.guessable is not None:
        guessable = name in settings.guessable
    else:
        golds = {it["gold"] for it in items}
        guessable = all(it["discrete"] for it in items) and len(golds) <= settings.max_distinct
    p1 = [it["c"] / it["n"] for it in items]
    n_samples = sum(it["n"] for it in items)
    block = {
        "n": n,
        "n_samples": n_samples,
        "pass_at_1": sum(p1) / n,
        "pass_at_1_ci95": item_mean_ci(p1),
        "pass_at_k": sum(pk) / n,
        "pass_at_k_ci95": item_mean_ci(pk),
        "reliable_pass_at_k": sum(reliable) / n,
        "unread_rate": sum(it.get("unread", 0) for it in items) / n_samples if n_samples else 0.0,
        "guessable": guessable,
        "mean_entropy": sum(it["entropy"] for it in items) / n,
        "mean_distinct_answers": sum(it["distinct_answers"] for it in items) / n,
        "n_solved_by_any_sample": sum(it["c"] > 0 for it in items),
    }
    block["score"] = block["reliable_pass_at_k"] if guessable else block["pass_at_k"]
    if n < settings.min_items:
        block["verdict"] = TOO_FEW
    elif block["score"] >= settings.threshold:
        block["verdict"] = "misapplied"
    elif settings.format_threshold is not None and block["unread_rate"] >= settings.format_threshold:
        block["verdict"] = "format"
    else:
        block["verdict"] = "missing"
    return block


def diagnose_rows(
    task: Task, examples: Sequence[Example], rows: Sequence[dict[str, Any]], settings: DiagnosisSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The diagnosis of one set of prediction rows: overall block (with a pass@j curve) and `by_<field>`
    blocks for each of the task's group fields; plus the per-item statistics."""
    items = item_stats(task, examples, rows, settings)
    if not items:
        raise ConfigError("no scorable predictions to diagnose")
    short = [it for it in items if it["n"] < settings.k]
    if short:
        ids = ", ".join(f"{it['id']} (n={it['n']})" for it in short[:5])
        raise ConfigError(
            f"pass@{settings.k} needs at least k={settings.k} samples per item; {len(short)} item(s) have fewer: "
            f"{ids}. Generate with --samples >= {settings.k} or lower --k"
        )
    overall = group_block(items, settings, name="all")
    overall["pass_at"] = {
        str(j): sum(pass_at_k(it["n"], it["c"], j) for it in items) / len(items)
        for j in _curve_points(settings.k)
    }
    out: dict[str, Any] = {"overall": overall}
    for f in task.groups.by:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for it in items:
            groups[it[f]].append(it)
        out[f"by_{f}"] = {g: group_block(its, settings, name=g) for g, its in sorted(groups.items())}
    for it in items:
        it["pass_at_k"] = pass_at_k(it["n"], it["c"], settings.k)
        it["reliable"] = is_reliable(it["c"], it["entropy"], settings, it.get("paper_m"))
    return out, items


# ---------------------------------------------------------------- the plan


def plan_field(task: Task, settings: DiagnosisSettings) -> str:
    """The group field the diagnosis plans by: `plan_by`, checked against the task's `plan_fields` (what the
    SFT data builder can select by), or the finest of them."""
    if settings.plan_by is not None:
        if settings.plan_by not in task.groups.plan:
            raise ConfigError(
                f"plan_by {settings.plan_by!r} is not a group of task {task.name!r} "
                f"({', '.join(task.groups.plan)})"
            )
        return settings.plan_by
    return task.groups.plan[-1]


def build_plan(diagnosis: dict[str, Any], by: str, settings: DiagnosisSettings) -> dict[str, Any]:
    """The recipe fragment: `sft_data.per_group` from the verdicts (see the module docstring)."""
    blocks = diagnosis.get(f"by_{by}") or {}
    per_group: dict[str, int] = {}
    rows_for = {
        "missing": settings.plan_examples,
        "format": settings.format_examples,
        "misapplied": settings.misapplied_examples,
        TOO_FEW: 0,
    }
    for name, b in blocks.items():
        count = rows_for.get(str(b.get("verdict")), 0)
        if name and count > 0:
            per_group[name] = count
    if per_group:
        return {"sft_data": {"per_group": per_group}}
    return {"sft_data": {"per_category_cap": settings.format_examples}}


def plan_yaml(plan: dict[str, Any], diagnosis: dict[str, Any], by: str, out: Path) -> str:
    import yaml

    run = diagnosis.get("run", {})
    blocks = diagnosis.get(f"by_{by}") or {}
    left = sorted(n for n, b in blocks.items() if b.get("verdict") == "misapplied")
    s = diagnosis["settings"]
    header = [
        "# SFT warm-up plan written by `ehrmind diagnose` (a recipe fragment).",
        f"# Use: ehrmind sft --recipe RECIPE --plan {out / PLAN}",
        f"# task {run.get('task')}, model {run.get('model', run.get('predictions'))}, data {run.get('data')} "
        f"(sha256 {str(run.get('data_sha256', ''))[:12]}), mode {diagnosis.get('mode')}, k={s['k']}",
        f"# groups by {by}; verdict: (reliable) pass@{s['k']} >= {s['threshold']} -> misapplied (RL can fix it), "
        "else missing (warm up)",
    ]
    count = Counter(str(b.get("verdict")) for b in blocks.values())
    if "per_group" in plan["sft_data"]:
        header.append(
            f"# {count['missing']} group(s) with missing knowledge get {s['plan_examples']} rows each; "
            f"{count['format']} that cannot follow the output format get {s['format_examples']}"
        )
    else:
        header.append("# no group lacks knowledge: a format-only warm-up (or skip SFT)")
    if left:
        header.append(f"# misapplied (left to RL): {'; '.join(left)[:2000]}")
    few = sorted(n for n, b in blocks.items() if b.get("verdict") == TOO_FEW)
    if few:
        header.append(
            f"# too few items to judge (min_items {s.get('min_items')}; no rows): {'; '.join(few)[:2000]}"
        )
    body = yaml.safe_dump(plan, sort_keys=False, allow_unicode=True, width=1000)
    return "\n".join(header) + "\n" + body


# ---------------------------------------------------------------- running it


def mode_tasks(
    task_name: str,
    modes: Sequence[str] | None,
    *,
    prefill: bool | str | None = None,
    task_options: dict[str, Any] | None = None,
    exemplars: str | Path | None = None,
    trained: TrainedPrompt | None = None,
    model: str | None = None,
) -> dict[str, tuple[Task, PromptChoice]]:
    """One configured Task per prompt mode, with how its options relate to the model's training
    (`trained`, `ehrmind.trained`: a folder ehrmind trained is prompted as in training unless told otherwise;
    no `modes` means its trained mode, else reasoning); `model` names it in the log. The prefill applies to
    the modes that open a <think> block and the exemplar file to `one-shot`."""
    from ehrmind.registry import get_task
    from ehrmind.trained import choose_options

    if modes is None:
        modes = [str(trained.options_for(task_name).get("mode", "reasoning")) if trained else "reasoning"]
    if not modes:
        raise ConfigError("give at least one prompt mode")
    if len(set(modes)) != len(modes):
        raise ConfigError(f"a prompt mode is repeated: {list(modes)}")
    if exemplars and "one-shot" not in modes:
        raise ConfigError("--one-shot-file is only used with --mode one-shot")
    tasks = {}
    for mode in modes:
        given: dict[str, Any] = {**(task_options or {}), "mode": mode}
        if mode == "one-shot" and exemplars:
            given["exemplars"] = str(exemplars)
        if mode == "direct":
            given["prefill"] = False
        elif prefill is not None:
            given["prefill"] = prefill
        choice = choose_options(task_name, trained, given, model)
        tasks[mode] = (get_task(task_name, **choice.options), choice)
    return tasks


def check_renders(tasks: Iterable[Task], examples: Sequence[Example]) -> None:
    """Render every prompt before a model loads: a missing one-shot exemplar fails here, not mid-run."""
    for task in tasks:
        for ex in examples:
            task.render(ex)


def run_diagnose(
    task_name: str,
    data: str,
    out_dir: str | Path,
    settings: DiagnosisSettings,
    *,
    model: str | None = None,
    predictions: str | Path | None = None,
    modes: Sequence[str] | None = None,
    split: str | None = None,
    limit: int | None = None,
    generation: GenerationSettings | None = None,
    backend: Backend | None = None,
    prefill: bool | str | None = None,
    task_options: dict[str, Any] | None = None,
    exemplars: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample (or read) k completions per item for each prompt mode, diagnose, and write diagnosis.json,
    report.md, diagnosis.png and sft_plan.yaml to `out_dir` (each mode's eval run under `out_dir/<mode>/`,
    resumable). The first mode is the one diagnosed for the plan; the others are baselines beside it.
    `generation` (default `GenerationSettings.rollout(k)`: k samples as GRPO rollouts are sampled) and
    `backend` (default: transformers on the CPU) say how a `model` generates."""
    from ehrmind.eval.runner import PREDICTIONS, evaluate_examples, run_record, run_score
    from ehrmind.generate.backends import make_generator

    gen = generation or GenerationSettings.rollout(settings.k)
    if model is not None:
        backend = (backend or Backend()).for_model(model)
    if (model is None) == (predictions is None):
        raise ConfigError("give either --model (to generate) or --predictions (to diagnose existing samples)")
    if predictions is not None and modes is not None and len(modes) != 1:
        raise ConfigError("--predictions holds one prompt mode's samples; give exactly one --mode")
    samples = gen.samples
    if samples < settings.k:
        raise ConfigError(f"--samples ({samples}) must be >= --k ({settings.k})")
    prompts = mode_tasks(
        task_name, modes, prefill=prefill, task_options=task_options, exemplars=exemplars,
        trained=TrainedPrompt.of(model, backend), model=model,
    )  # fmt: skip
    modes = list(prompts)
    primary = prompts[modes[0]][0]
    by = plan_field(primary, settings)
    examples = primary.load(data, split)[:limit]
    if not examples:
        raise ConfigError(f"no examples in {data}")
    check_renders([t for t, _ in prompts.values()], examples)
    out = output_folder(out_dir)

    generator = None
    results: dict[str, dict[str, Any]] = {}
    for mode, (task, prompt) in prompts.items():
        mode_dir = out / mode
        if predictions is not None:
            info = run_record(task, examples, data, samples=samples, seed=gen.seed, limit=limit)
            metrics = run_score(
                task, examples, _limited(predictions, examples, mode_dir, limit), mode_dir, info=info
            )
        else:
            assert model is not None
            if generator is None:
                generator = make_generator(model, gen, backend)
            metrics = evaluate_examples(
                task, examples, data, generator, mode_dir, model=model, settings=gen, backend=backend,
                progress=progress, limit=limit, **prompt.record(),
            )  # fmt: skip
        rows = read_jsonl(mode_dir / PREDICTIONS)
        diag, items = diagnose_rows(task, examples, rows, settings)
        atomic_write_jsonl(mode_dir / ITEMS, items)
        results[mode] = {
            "diagnosis": diag,
            "metrics": metrics,
            "info": metrics["run"],
            "accuracy": _accuracy(metrics, task),
        }

    main = results[modes[0]]
    diagnosis: dict[str, Any] = {
        "task": task_name,
        "mode": modes[0],
        "k": settings.k,
        "samples": samples,
        **main["diagnosis"],
        "settings": asdict(settings),
        "plan_by": by,
        "run": main["info"],
        "accuracy": main["accuracy"],
        "baselines": {
            m: {
                "overall": r["diagnosis"]["overall"],
                f"by_{primary.groups.by[0]}": r["diagnosis"].get(f"by_{primary.groups.by[0]}"),
                "accuracy": r["accuracy"],
            }
            for m, r in results.items()
            if m != modes[0]
        },
    }
    plan = build_plan(diagnosis, by, settings)
    diagnosis["plan"] = plan
    atomic_write_json(out / DIAGNOSIS, diagnosis)
    atomic_write_text(out / PLAN, plan_yaml(plan, diagnosis, by, out))
    plot_diagnosis(diagnosis, primary.groups.by[0], out / PLOT)
    write_diagnosis_report(out, diagnosis, primary.groups.by, results, extra_headlines(primary))
    return diagnosis


def _limited(predictions: str | Path, examples: Sequence[Example], mode_dir: Path, limit: int | None) -> Path:
    """With --limit, only the predictions of the kept items (others would be 'not in the data')."""
    path = Path(predictions)
    if limit is None:
        return path
    ids = {ex.id for ex in examples}
    lines = [r for r in read_jsonl(path) if str(r.get("id")) in ids]
    kept = mode_dir / "input_predictions.jsonl"
    atomic_write_jsonl(kept, lines)
    return kept


def _accuracy(metrics: dict[str, Any], task: Task) -> dict[str, Any]:
    """Accuracy, and each analysis's other headline (`extra_headlines`: e.g. MedCalc-Bench's official accuracy
    and the reasoning checks)."""
    keys = ("n", "accuracy", "ci95", "strict_accuracy", "format_error_rate")
    out = {k: metrics.get(k) for k in keys}
    shown = {h.label: h.read(metrics)[0] for h in extra_headlines(task)}
    if shown:
        out["headlines"] = shown
    return out


# ---------------------------------------------------------------- report and plot


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _rule_text(s: dict[str, Any], k: int) -> str:
    """The reliable-pass@k rule of a diagnosis, in a sentence of its report."""
    rule = s.get("reliable_rule", "paper")
    if rule in PAPER_THRESHOLDS:
        judged = (
            "correct samples and answers as the paper's code reads them (MedCalc: the answer string equal to the "
            "label on those items, MedCalc-Bench's `check_correctness(str(answer))` on the others; TREC: the "
            "answer as written equal to the label)"
            if rule == "paper"
            else "ehrmind's verdicts and normalised answers (`paper-thresholds`)"
        )
        return (
            f"*Reliable pass@{k}* by the EHRMind paper's rule: on items with m possible answers by the paper "
            f"(MedCalc diagnosis and severity m = 7, risk m = 21; TREC m = 3) an item counts only with at least "
            f"{k} // m + 2 correct samples and an answer entropy below 0.8 · ln m nats; other items count with "
            f"their pass@k; groups with such items are marked *guessable*; {judged}."
        )
    listed = f", or as listed: {', '.join(s['guessable'])}" if s["guessable"] is not None else ""
    return (
        f"In *guessable* groups (discrete gold answers with at most {s['max_distinct']} distinct values{listed}) "
        f"an item counts only if it has at least {s['min_correct']} correct samples and an answer entropy of at "
        f"most {s['max_entropy']} bits (*reliable pass@{k}*, ehrmind's rule)."
    )


def _with_ci(x: float | None, ci: list[float] | None) -> str:
    return _pct(x) + (f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]" if ci else "")


def _table(blocks: dict[str, dict[str, Any]], label: str, k: int) -> list[str]:
    lines = [
        f"| {label} | n | pass@1 [95% CI] | pass@{k} [95% CI] | reliable pass@{k} | guessable | no answer read "
        "| entropy (bits) | verdict |",
        "|---|---:|---:|---:|---:|:---:|---:|---:|---|",
    ]
    for name, b in blocks.items():
        if not b.get("n"):
            continue
        lines.append(
            f"| {name or '(none)'} | {b['n']} | {_with_ci(b['pass_at_1'], b.get('pass_at_1_ci95'))} | "
            f"{_with_ci(b['pass_at_k'], b.get('pass_at_k_ci95'))} | {_pct(b['reliable_pass_at_k'])} | "
            f"{'yes' if b['guessable'] else ''} | {_pct(b.get('unread_rate'))} | {b['mean_entropy']:.2f} | "
            f"**{b['verdict']}** |"
        )
    return lines


def write_diagnosis_report(
    out: Path,
    diagnosis: dict[str, Any],
    group_fields: Sequence[str],
    results: dict[str, dict[str, Any]],
    shown: Sequence[Headline] = (),
) -> Path:
    """report.md of a diagnosis; `shown`: the analyses' headlines in the accuracy table."""
    s, k = diagnosis["settings"], diagnosis["k"]
    run = diagnosis.get("run", {})
    lines = [f"# Diagnosis: {diagnosis['task']} — {run.get('model') or run.get('predictions', '?')}", ""]
    lines += ["| | |", "|---|---|"]
    per_mode = ("prompt_mode", "samples", "batch_size", "finished")  # in the table below, or each mode's
    lines += facts_rows(run, [key for key in RUN_FACTS if key not in per_mode])
    lines.append(f"| prompt modes | `{', '.join(results)}` (diagnosed: `{diagnosis['mode']}`) |")
    lines.append(f"| k / samples per item | {k} / {diagnosis['samples']} |")
    from ehrmind.trained import report_lines

    trained = report_lines(run.get("trained_prompt"))
    lines += ["", *trained] if trained else []
    lines += [
        "",
        "## Verdict rule",
        "",
        f"Per item, pass@{k} is the unbiased estimator 1 − C(n−c, {k})/C(n, {k}) (Chen et al. 2021) from n samples "
        f"with c correct; a group's value is the mean over its items. "
        + _rule_text(s, k)
        + " Verdict: **misapplied** (the model has the "
        f"knowledge; RL alone can fix it) when that value is ≥ {s['threshold']}, else **missing** (the SFT "
        "warm-up must inject it)"
        + (
            f" — or **format** when at least {_pct(s['format_threshold'])} of the samples give no readable answer "
            "(the model cannot follow the output format, so what it knows is unmeasured; planned as "
            "format-teaching rows)"
            if s.get("format_threshold") is not None
            else ""
        )
        + f". A group of fewer than {s.get('min_items', 1)} items is **too few items** (no plan rows). "
        "Intervals are 95% over items (bootstrap, widened to Wilson where it would collapse). "
        "See docs/diagnosis.md.",
        "",
        "## Overall",
        "",
        *_table({"all": diagnosis["overall"]}, "", k),
        "",
        f"![pass@k by {group_fields[0]}]({PLOT})",
    ]
    for f in group_fields:
        blocks = diagnosis.get(f"by_{f}")
        if blocks:
            lines += ["", f"## By {f.replace('_', ' ')}", "", *_table(blocks, f.replace("_", " "), k)]
    if len(results) > 1:
        first = group_fields[0]
        modes = list(results)
        lines += ["", "## Prompt modes side by side", ""]
        head = " | ".join(f"{m} pass@1 | {m} pass@{k}" for m in modes)
        lines += [f"| {first} | {head} |", "|---|" + "---:|" * (2 * len(modes))]
        names = list(results[modes[0]]["diagnosis"].get(f"by_{first}", {}))
        for name in ["(all)", *names]:
            cells = []
            for m in modes:
                d = results[m]["diagnosis"]
                b = d["overall"] if name == "(all)" else d.get(f"by_{first}", {}).get(name, {})
                cells += [_pct(b.get("pass_at_1")), _pct(b.get("pass_at_k"))]
            lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += [
        "",
        "## Accuracy by prompt mode",
        "",
        "| mode | n | accuracy | 95% CI | format errors |" + "".join(f" {h.label} |" for h in shown),
        "|---|---:|---:|---:|---:|" + "---:|" * len(shown),
    ]
    for m, r in results.items():
        a = r["accuracy"]
        ci = a.get("ci95")
        values = a.get("headlines") or {}
        lines.append(
            f"| {m} | {a.get('n')} | {_pct(a.get('accuracy'))} | "
            f"{'—' if not ci else f'[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]'} | {_pct(a.get('format_error_rate'))} |"
            + "".join(f" {h.show(values.get(h.label))} |" for h in shown)
        )
    lines += ["", "Each mode's predictions, metrics and report are in its folder (`<mode>/`)."]
    plan = diagnosis["plan"]["sft_data"]
    lines += [
        "",
        "## SFT plan",
        "",
        f"`{PLAN}` (use: `ehrmind sft --recipe RECIPE --plan {out / PLAN}`):",
        "",
    ]
    if "per_group" in plan:
        lines += [f"- {name}: {count} rows" for name, count in plan["per_group"].items()]
    else:
        lines.append(
            f"- no group lacks knowledge: a format-only warm-up of {plan['per_category_cap']} rows per category"
        )
    path = out / REPORT
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def plot_diagnosis(diagnosis: dict[str, Any], first_field: str, path: Path) -> None:
    """Left: pass@1, pass@k and the verdict score per group with the threshold; right: pass@j curves per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    k = diagnosis["k"]
    blocks = {n: b for n, b in (diagnosis.get(f"by_{first_field}") or {}).items() if b.get("n")}
    names = list(blocks) or ["all"]
    blocks = blocks or {"all": diagnosis["overall"]}
    y = np.arange(len(names))
    h = 0.27
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 0.5 * len(names) + 2), gridspec_kw={"width_ratios": [2, 1]}
    )
    ax.barh(y - h, [100 * blocks[n]["pass_at_1"] for n in names], h, label="pass@1", color="#9DB4D3")
    ax.barh(y, [100 * blocks[n]["pass_at_k"] for n in names], h, label=f"pass@{k}", color="#4C72B0")
    ax.barh(
        y + h,
        [100 * blocks[n]["score"] for n in names],
        h,
        label="verdict score",
        color="#DD8452",
        hatch="//",
    )
    ax.axvline(100 * diagnosis["settings"]["threshold"], color="black", linestyle="--", linewidth=1)
    ax.set_yticks(y, [f"{n} ({blocks[n]['verdict']})" for n in names])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of items")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{diagnosis['task']}: pass@k by {first_field.replace('_', ' ')}")
    curves = {diagnosis["mode"]: diagnosis["overall"].get("pass_at", {})}
    curves.update({m: b["overall"].get("pass_at", {}) for m, b in diagnosis.get("baselines", {}).items()})
    for mode, curve in curves.items():
        js = [int(j) for j in curve]
        ax2.plot(js, [100 * v for v in curve.values()], marker="o", label=mode)
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(_curve_points(k), [str(j) for j in _curve_points(k)])
    ax2.set_ylim(0, 100)
    ax2.set_xlabel("k")
    ax2.set_ylabel("pass@k (%)")
    ax2.set_title("all items, by prompt mode")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
