"""`ehrmind demo`: the whole recipe on the embedded default — CPU, a small local model, no network.

Synthetic MedCalc notes for a point-sum score (FeverPAIN: five findings read from the note, added up; the
answers and the step-by-step reasoning come from the calculator knowledge base) → a small model built
locally → held-out evaluation → light SFT warm-up on an imperfect teacher's worked examples (it misapplies
one criterion, so the warmed model is inconsistent) → evaluation and a pass@k diagnosis (how much RL can
sharpen) → GRPO, with a checkpoint every few steps → evaluation and a learning curve → `report.md`,
`metrics.json` and plots. Stages are compared on the same held-out items with paired 95% intervals.

With `model` set (`ehrmind demo --model models/smollm2-135m-instruct`), the same protocol runs on a real
pretrained model instead of the small random one, with the training settings of `recipes/pretrained.yaml`
and the sizes of `DemoSettings.pretrained` (docs/REAL_MODEL.md): where a CUDA GPU exists it trains in bf16,
generates GRPO rollouts with vLLM when vLLM is installed, and evaluates on the GPU.

Splits are disjoint: warm-up notes, RL notes (only their gold answers are used), a development split
(the diagnosis; and, with `evaluate_on="dev"`, where settings are chosen) and a held-out split that
choosing settings never sees. Every stage resumes: run the same command again after an interruption.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ehrmind.io import atomic_write_json, atomic_write_text
from ehrmind.programs.experiment import (
    REPORTED_DIAGNOSIS,
    compare,
    evaluate_stage,
    fmt_diff,
    learning_curve,
    synthetic_split,
    verdict,
)
from ehrmind.registry import get_task

log = logging.getLogger(__name__)

STAGES = ("base", "sft", "rl")
STAGE_LABELS = {"base": "before training", "sft": "after SFT warm-up", "rl": "after SFT → GRPO"}
COMPARISONS = {
    "sft_vs_base": ("sft", "base", "SFT warm-up vs. before training"),
    "grpo_vs_sft": ("rl", "sft", "GRPO after the warm-up vs. the warm-up alone"),
    "grpo_vs_base": ("rl", "base", "SFT → GRPO vs. before training"),
}
STEPS = 9


@dataclass
class DemoSettings:
    """The demo's data and evaluation; the training settings are the recipe's (`recipes/demo.yaml`)."""

    calculators: tuple[int, ...] = (33,)
    """MedCalc-Bench calculator ids (33 = FeverPAIN)."""
    n_sft: int = 1600
    """Warm-up notes with the teacher's reasoning (one pass at the recipe's 200 steps × 8)."""
    n_rl: int = 400
    """RL prompts (other notes; GRPO sees 20 steps × 8 of them)."""
    n_dev: int = 300
    n_heldout: int = 300
    diagnose_items: int = 60
    """Development items for the pass@k diagnosis after the warm-up."""
    k: int = 8
    curve_items: int = 100
    """Held-out items evaluated at every RL checkpoint (the learning curve); the first ones of the split."""
    teacher_slips: tuple[tuple[str, float], ...] = (("Absence of cough or coryza", 0.6),)
    """The warm-up's worked examples come from an imperfect teacher: for each (finding, rate), in that share
    of the notes where the finding is present the teacher reads it right but gives it no points (answer and
    later totals follow). The default: FeverPAIN's double negative — *no* cough or coryza earns a point —
    misapplied in 60% of the notes that have it. RL prompts and evaluation splits are correct."""
    max_distractors: int = 0
    reasoning: str = "compact"
    size: str = "small"
    max_new_tokens: int = 128
    batch_size: int = 64
    data_seed: int = 0
    evaluate_on: Literal["heldout", "dev"] = "heldout"
    """Where the stages are compared: the held-out split (reported numbers) or the development split (while
    choosing settings, which must never look at the held-out split)."""

    model: str | None = None
    """A pretrained model (a folder or Hub id) to run the recipe on; None builds the small random model."""
    recipe: str | None = None
    """The training recipe; None: `recipes/pretrained.yaml` with a `model`, else `recipes/demo.yaml`."""

    def __post_init__(self) -> None:
        if self.evaluate_on not in ("heldout", "dev"):
            raise ValueError(f"evaluate_on must be 'heldout' or 'dev', got {self.evaluate_on!r}")

    @classmethod
    def pretrained(cls, model: str, **changes: Any) -> DemoSettings:
        """The sizes for a real pretrained model on two CPU cores (≤ 90 min, docs/REAL_MODEL.md): a warm-up of
        one pass over 640 worked examples (80 steps × 8), 200 RL notes (20 GRPO steps × 4 prompts), 200
        development and 200 held-out notes, the headroom on 40 development notes."""
        sizes: dict[str, Any] = {
            "n_sft": 640,
            "n_rl": 200,
            "n_dev": 200,
            "n_heldout": 200,
            "diagnose_items": 40,
            "curve_items": 100,
            "max_new_tokens": 192,
            "batch_size": 32,
        }
        return cls(model=model, **{**sizes, **changes})

    def recipe_path(self) -> Path:
        from ehrmind.recipes import DEMO, PRETRAINED

        return Path(self.recipe) if self.recipe else (PRETRAINED if self.model else DEMO)

    def split_seed(self, split: str) -> int:
        """Distinct note streams per split (and per data seed)."""
        return 100 * (self.data_seed + 1) + ("sft", "rl", "dev", "heldout").index(split) + 1


def run_demo(
    out_dir: str | Path,
    settings: DemoSettings | None = None,
    *,
    seed: int = 0,
    sft_overrides: tuple[str, ...] = (),
    rl_overrides: tuple[str, ...] = (),
    progress: bool = True,
) -> Path:
    """Run (or resume) the demo into `out_dir`; returns the path of `report.md`."""
    from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose
    from ehrmind.generate.settings import GenerationSettings
    from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.rl import run_rl
    from ehrmind.train.sft import run_sft
    from ehrmind.train.tiny import build_tiny_model

    s = settings or DemoSettings()
    started = time.monotonic()
    started_load = os.getloadavg()[0]
    timings: dict[str, float] = {}
    out = Path(out_dir)
    recipe_file = s.recipe_path()
    sft_recipe = load_recipe(recipe_file, stage="sft")  # the task options every stage shares
    opts = sft_recipe.task_options.model_dump()
    task = get_task("medcalc", **opts)

    def clock(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)

    # 1. data: four disjoint splits; evaluation splits exclude every training note
    t0 = time.monotonic()
    paths, splits = {}, {}
    train_notes: set[str] = set()
    for split, n in (("sft", s.n_sft), ("rl", s.n_rl), ("dev", s.n_dev), ("heldout", s.n_heldout)):
        paths[split], splits[split] = synthetic_split(
            task,
            out / "data",
            split,
            s.calculators,
            n,
            s.split_seed(split),
            max_distractors=s.max_distractors,
            reasoning=s.reasoning,
            exclude_notes=train_notes if split in ("dev", "heldout") else (),
        )
        if split in ("sft", "rl"):
            train_notes |= {ex.input["note"] for ex in splits[split]}
    paths["sft"], splits["sft"], slipped = teacher_rationales(
        task, splits["sft"], out / "data", s.teacher_slips, seed=s.split_seed("sft"), reasoning=s.reasoning
    )
    clock("data", t0)
    log.info(
        "[1/%d] synthetic notes: %d warm-up, %d RL, %d development, %d held-out (%s)",
        STEPS, s.n_sft, s.n_rl, s.n_dev, s.n_heldout, out / "data",
    )  # fmt: skip

    # 2. the model: a pretrained one, or a small random model whose tokenizer is trained on the training notes
    t0 = time.monotonic()
    if s.model:
        model_dir = Path(s.model)
        info = pretrained_info(s.model)
    else:
        model_dir = out / "model"
        if not (model_dir / "config.json").exists():
            corpus = [opts["system_prompt"] or ""]
            for ex in splits["sft"] + splits["rl"]:
                corpus += [ex.input["note"], ex.input["question"], str(ex.metadata.get("explanation", ""))]
            build_tiny_model(model_dir, size=s.size, seed=seed, corpus=corpus, texts=tiny_corpus())
        info = json.loads((model_dir / "ehrmind_tiny.json").read_text(encoding="utf-8"))
        info["label"] = f"{info['n_parameters'] / 1e6:.1f}M-parameter {s.size} model"
    clock("model", t0)
    log.info("[2/%d] %s: %s", STEPS, info["label"], model_dir)
    # A pretrained model uses a GPU where there is one; the small model's recipe runs on the CPU everywhere.
    backend = local_backend() if s.model else None

    eval_split = s.evaluate_on
    eval_examples, eval_path = splits[eval_split], paths[eval_split]
    rows: dict[str, list[dict[str, Any]]] = {}
    stage_metrics: dict[str, dict[str, Any]] = {}

    def stage_eval(stage: str, model: Path, step: int) -> None:
        t = time.monotonic()
        stage_metrics[stage], rows[stage] = evaluate_stage(
            task,
            eval_examples,
            eval_path,
            model,
            out / "eval" / stage,
            max_new_tokens=s.max_new_tokens,
            seed=seed,
            batch_size=s.batch_size,
            progress=progress,
            backend=backend,
        )
        clock(f"eval_{stage}", t)
        m = stage_metrics[stage]
        log.info(
            "[%d/%d] %s accuracy %s: strict %.1f%%, lenient %.1f%% (format errors %.1f%%)",
            step, STEPS, eval_split, STAGE_LABELS[stage], 100 * (m["strict_accuracy"] or 0),
            100 * (m["accuracy"] or 0), 100 * (m["format_error_rate"] or 0),
        )  # fmt: skip

    stage_eval("base", model_dir, 3)

    common = [f"seed={seed}"]
    gpu = gpu_overrides() if s.model else {"sft": [], "rl": []}
    sft = load_recipe(
        recipe_file,
        [*common, f"data={paths['sft']}", f"model={model_dir}", f"output_dir={out / 'sft'}", *gpu["sft"],
         *sft_overrides],
        stage="sft",
    )  # fmt: skip
    rl = load_recipe(
        recipe_file,
        [*common, f"data={paths['rl']}", f"model={out / 'sft'}", f"output_dir={out / 'rl'}", *gpu["rl"],
         *rl_overrides],
        stage="rl",
    )  # fmt: skip
    if sft.task_options != rl.task_options or sft.task_options.model_dump() != opts:
        raise ValueError("the demo's SFT and RL stages must prompt the same way (task_options differ)")

    log.info("[4/%d] SFT warm-up on %d worked examples: %s", STEPS, len(splits["sft"]), _short(sft.trl))
    t0 = time.monotonic()
    if not finished(sft):
        run_sft(sft)
    clock("sft", t0)
    stage_eval("sft", out / "sft", 5)

    # 6. how much RL can sharpen: pass@1 vs pass@k of the warmed model, sampled as GRPO samples
    t0 = time.monotonic()
    diagnosis = run_diagnose(
        "medcalc",
        str(paths["dev"]),
        out / "diagnosis",
        DiagnosisSettings(k=s.k, **REPORTED_DIAGNOSIS),
        model=str(out / "sft"),
        limit=s.diagnose_items,
        generation=GenerationSettings(
            samples=s.k,
            temperature=float(rl.trl.get("temperature", 1.0)),
            top_p=float(rl.trl.get("top_p", 1.0)),
            max_new_tokens=s.max_new_tokens,
            batch_size=s.batch_size,
            seed=seed,
        ),
        prefill=opts["prefill"],
        task_options={"system_prompt": opts["system_prompt"]},
        progress=progress,
        backend=backend,
    )
    clock("diagnosis", t0)
    over = diagnosis["overall"]
    log.info(
        "[6/%d] headroom after the warm-up (development split): pass@1 %.1f%%, pass@%d %.1f%%",
        STEPS, 100 * over["pass_at_1"], s.k, 100 * over["pass_at_k"],
    )  # fmt: skip

    log.info("[7/%d] GRPO with verifiable rewards: %s", STEPS, _short(rl.trl))
    t0 = time.monotonic()
    if not finished(rl):
        run_rl(rl)
    clock("rl", t0)
    stage_eval("rl", out / "rl", 8)

    t0 = time.monotonic()
    curve_examples = eval_examples[: s.curve_items]
    curve = learning_curve(
        task,
        curve_examples,
        eval_path,
        out / "rl",
        out / "eval" / "curve",
        start=rows["sft"],
        max_new_tokens=s.max_new_tokens,
        batch_size=s.batch_size,
        backend=backend,
    )
    clock("learning_curve", t0)
    log.info("[9/%d] learning curve over %d checkpoints", STEPS, len(curve) - 1)

    comparisons = {
        name: compare(rows[after], rows[before]) for name, (after, before, _) in COMPARISONS.items()
    }
    return write_demo_report(
        out,
        stage_metrics,
        comparisons,
        diagnosis,
        curve,
        slipped,
        settings=s,
        seed=seed,
        model_info=info,
        recipes={"sft": sft.model_dump(mode="json"), "rl": rl.model_dump(mode="json")},
        timings=timings,
        wall_seconds=time.monotonic() - started,
        resources=run_resources(started_load),
    )


def pretrained_info(model: str) -> dict[str, Any]:
    """What the report says about a pretrained model: its name, size and where it came from (a folder
    `ehrmind get-model` built records that in `ehrmind_model.json`)."""
    from ehrmind.pretrained import read_model_record

    record = read_model_record(model) or {}
    n = record.get("n_parameters")
    if n is None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            n = sum(
                p.numel()
                for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model)).parameters()
            )
    name = record.get("hub_id", "").split("/")[-1] or Path(model).name or model
    source = {
        "pypi": f"{record.get('pypi_package')} {record.get('pypi_version')} from the package index, "
        f"{record.get('quantization')}",
        "hub": f"the Hub ({record.get('hub_id')}, commit {record.get('commit') or 'unknown'})",
        "gguf": f"a local GGUF file, {record.get('quantization')}",
    }.get(record.get("source", ""), str(model))
    return {
        "name": name,
        "path": str(model),
        "n_parameters": int(n),
        "source": source,
        "record": record,
        "label": f"{name} ({n / 1e6:.1f}M parameters, pretrained)",
        "pretrained": True,
    }


def local_backend() -> Any:
    """Where the demo evaluates: transformers on a CUDA GPU when there is one, else on the CPU. (Not vLLM: GRPO's
    colocated vLLM engine lives in the same process, and a second engine would compete for its memory.)"""
    import torch

    from ehrmind.generate.backends import Backend

    return Backend.choose("hf", device="cuda" if torch.cuda.is_available() else "cpu")


def gpu_overrides() -> dict[str, list[str]]:
    """Recipe overrides that make the same command use a CUDA GPU: bf16 for both stages, and vLLM colocated
    for GRPO's rollouts when it is installed. Nothing on a CPU-only machine (the recipe's CPU defaults)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return {"sft": [], "rl": []}
    bf16 = ["trl.bf16=true"] if torch.cuda.is_bf16_supported() else []
    rl = [*bf16]
    if importlib.util.find_spec("vllm") is not None:
        rl += ["trl.use_vllm=true", "trl.vllm_mode=colocate"]
    return {"sft": bf16, "rl": rl}


def finished(recipe: Any) -> bool:
    """Whether this recipe's training already ran to the end in its output folder (its model and log are
    written last), so a rerun skips it; a folder holding a different run is refused, not overwritten."""
    from ehrmind.errors import ConfigError
    from ehrmind.train.run import RUN_RECORD, load_run_record

    out = Path(recipe.output_dir)
    if not (out / RUN_RECORD).exists():
        return False
    if load_run_record(out)["recipe"] != recipe.model_dump(mode="json"):
        raise ConfigError(f"{out} holds a run with other settings; remove it or choose another --out")
    return (out / "log_history.json").exists() and (out / "config.json").exists()


def teacher_rationales(
    task: Any,
    examples: list[Any],
    out_dir: Path,
    slips: tuple[tuple[str, float], ...],
    *,
    seed: int,
    reasoning: str,
    name: str = "sft_teacher",
) -> tuple[Path, list[Any], dict[str, int]]:
    """The warm-up split as an imperfect teacher writes it: for each (finding, rate), that share of the
    worked examples whose note has the finding give it no points (`notes.withhold_points`). Writes
    `out_dir/name`; returns its path, the examples and how many slipped per finding."""
    import dataclasses
    import random

    from ehrmind.snapshot import EXAMPLES, write_snapshot
    from ehrmind.tasks.medcalc.notes import withhold_points

    rng = random.Random(seed)
    counts = {finding: 0 for finding, _ in slips}
    out = []
    for ex in examples:
        for finding, rate in slips:
            if ex.metadata["relevant_entities"].get(finding) is True and rng.random() < rate:
                ex = withhold_points(ex, finding, reasoning)
                slipped = [*ex.metadata.get("teacher_slips", []), finding]
                ex = dataclasses.replace(ex, metadata={**ex.metadata, "teacher_slips": slipped})
                counts[finding] += 1
        out.append(ex)
    write_snapshot(task, out, "teacher", out_dir / name, slips=[list(x) for x in slips])
    return out_dir / name / EXAMPLES, out, counts


def completions_per_step(trl: dict[str, Any]) -> int:
    """Completions per optimizer step on one process (TRL's generation batch)."""
    per_device = int(trl.get("per_device_train_batch_size", 8))
    return int(
        trl.get("generation_batch_size") or per_device * int(trl.get("gradient_accumulation_steps", 1))
    )


def _short(trl: dict[str, Any]) -> str:
    keys = (
        "learning_rate", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
        "num_generations", "temperature",
    )  # fmt: skip
    return ", ".join(f"{k}={trl[k]}" for k in keys if k in trl)


def _history(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def write_demo_report(
    out: Path,
    stages: dict[str, dict[str, Any]],
    comparisons: dict[str, dict[str, Any]],
    diagnosis: dict[str, Any],
    curve: list[dict[str, Any]],
    slipped: dict[str, int],
    *,
    settings: DemoSettings,
    seed: int,
    model_info: dict[str, Any],
    recipes: dict[str, Any],
    timings: dict[str, float],
    wall_seconds: float,
    resources: dict[str, Any] | None = None,
) -> Path:
    """report.md, metrics.json, training.png (loss, reward, learning curve) and accuracy_by_stage.png.
    `resources`: the CPU, threads, load and peak memory of the run (`run_resources`)."""
    resources = resources or {}
    s = settings
    sft_log = _history(out / "sft" / "log_history.json")
    rl_log = _history(out / "rl" / "log_history.json")
    n = stages["base"]["n"]
    split = "held-out" if s.evaluate_on == "heldout" else "development"
    calcs = ", ".join(sorted(stages["base"].get("by_calculator_name", {})))
    subtitle = f"{model_info['label']} · {calcs} · n={n} {split} notes"
    _plot_training(out / "training.png", sft_log, rl_log, curve, subtitle, split)
    _plot_stages(out / "accuracy_by_stage.png", stages, comparisons, subtitle)

    rows_per_step = completions_per_step(recipes["rl"]["trl"])
    group = recipes["rl"]["trl"].get("num_generations")
    pretrained = bool(model_info.get("pretrained"))
    model_line = (
        f"**{model_info['name']}**, a pretrained instruction-tuned model ({model_info['n_parameters'] / 1e6:.1f}M "
        f"parameters; {model_info['source']}), prompted through its own chat template"
        if pretrained
        else f"A {model_info['label']}, randomly initialised and built locally (seed {seed})"
    )
    teacher = f"an **imperfect teacher** ({_teacher(s, slipped)})" if s.teacher_slips else "a correct teacher"
    docs = "docs/REAL_MODEL.md" if pretrained else "docs/DEMO.md"
    recipe_name = "recipes/pretrained.yaml" if pretrained else "recipes/demo.yaml"
    lines = [
        f"# ehrmind demo{' on ' + model_info['name'] if pretrained else ''}: a light SFT warm-up, then GRPO",
        "",
        f"Synthetic MedCalc notes for **{calcs}** (answers and reasoning computed by ehrmind's calculator "
        f"knowledge base). {model_line}. Warm-up: {s.n_sft} worked examples from {teacher}; GRPO: "
        f"{recipes['rl']['trl'].get('max_steps')} steps × {rows_per_step // group} prompts × {group} completions "
        f"on other notes (gold answers only); training seed {seed}. Evaluated on **{n} {split} notes** that no "
        f"training split contains, greedy decoding.",
        "",
        f"**In one line:** {_one_line(comparisons)}",
        "",
        f"Run: {_machine(resources, wall_seconds)}.",
        "",
    ]
    if s.teacher_slips:
        lines += [
            "*Why an imperfect teacher.* RL can only sharpen what sampling already finds. After a warm-up from a "
            "perfect teacher a small model either cannot do the task yet (nothing for RL to find) or does it "
            "reliably (nothing left to gain). EHRMind's case — the knowledge is there but applied "
            "inconsistently — is built here by a teacher that misapplies one criterion's rule part of the time; "
            "the verifiable reward, computed from the correct answers, is what tells GRPO which way is right.",
            "",
        ]
    lines += [
        "## Held-out accuracy per stage"
        if s.evaluate_on == "heldout"
        else "## Development accuracy per stage",
        "",
        "![accuracy by stage](accuracy_by_stage.png)",
        "",
        "| stage | n | strict accuracy | 95% CI | lenient accuracy | 95% CI | format errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for st in STAGES:
        m = stages[st]
        lines.append(
            f"| {STAGE_LABELS[st]} | {m['n']} | {_pct(m['strict_accuracy'])} | {_ci(_wilson(m, 'strict'))} | "
            f"{_pct(m['accuracy'])} | {_ci(m['ci95'])} | {_pct(m['format_error_rate'])} |"
        )
    lines += [
        "",
        '*Strict*: correct and in the output contract (`<think>…</think><answer>{"answer": …}</answer>`), what '
        "GRPO rewards. *Lenient*: MedCalc-Bench's rule applied to the extracted answer whatever the format, "
        "so a gain there is more than format repair. Intervals: Wilson.",
        "",
        "## Paired comparisons (same items)",
        "",
        "| comparison | strict: difference [95% CI] | McNemar p | items gained / lost | lenient: difference [95% CI] | reading |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, (_, _, label) in COMPARISONS.items():
        c = comparisons[name]
        lines.append(
            f"| {label} | {fmt_diff(c)} | {c['mcnemar_p']:.2g} | {c['gained']} / {c['lost']} | "
            f"{fmt_diff(c['lenient'])} | strict: {verdict(c)}; lenient: {verdict(c['lenient'])} |"
        )
    lines += [
        "",
        "Paired bootstrap over items (10,000 resamples) of the difference in accuracy, and McNemar's exact "
        "test on the items whose verdict changed. With n = "
        f"{n}, a 10-point difference is detectable when the stages disagree on a few dozen items.",
        "",
        "## Headroom for RL after the warm-up",
        "",
        *_headroom(diagnosis, recipes["rl"]["trl"]),
        "",
        "## Training",
        "",
        f"![SFT loss, GRPO reward and {split} accuracy per step](training.png)",
        "",
        *_training_lines(sft_log, rl_log, curve),
        "",
        "## How these settings were chosen",
        "",
        (
            f"The settings were chosen on the development split (other notes) with development seeds; this "
            f"run (seed {seed}, data seed {s.data_seed}) and its held-out notes were not used while choosing. "
            f"{docs} lists every configuration tried, with its result."
            if s.evaluate_on == "heldout"
            else f"This is a development run (`--dev`, seed {seed}): its numbers are for choosing settings; "
            f"report numbers from a held-out run with a seed not used while choosing ({docs})."
        ),
        "",
        "Per-stage reports: [before](eval/base/report.md), [after SFT](eval/sft/report.md), "
        "[after GRPO](eval/rl/report.md); diagnosis: [diagnosis/report.md](diagnosis/report.md). Recipe: "
        f"`{recipe_name}`; training records: `sft/ehrmind_run.json`, `rl/ehrmind_run.json`.",
        "",
    ]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    metrics = {
        "evaluated_on": s.evaluate_on,
        "stages": {st: {k: v for k, v in stages[st].items() if k != "run"} for st in STAGES},
        "comparisons": comparisons,
        "headroom": {
            "split": "dev",
            "k": diagnosis["k"],
            "temperature": diagnosis["run"].get("temperature"),
            "overall": diagnosis["overall"],
            "by_calculator_name": diagnosis.get("by_calculator_name"),
        },
        "learning_curve": curve,
        "rl_log": [
            {k: h[k] for k in _RL_KEYS if k in h} | {"step": h["step"]} for h in rl_log if "reward" in h
        ],
        "sft_loss_per_step": [{"step": h["step"], "loss": h["loss"]} for h in sft_log if "loss" in h],
        "runs": {st: stages[st].get("run") for st in STAGES},
        "teacher": {"slips": [list(x) for x in s.teacher_slips], "slipped": slipped, "n": s.n_sft},
        "settings": asdict(s) | {"seed": seed},
        "model": model_info,
        "recipes": recipes,
        "timings_seconds": timings,
        "wall_seconds": wall_seconds,
        "resources": resources,
    }
    atomic_write_json(out / "metrics.json", metrics)
    return report


_RL_KEYS = (
    "reward",
    "reward_std",
    "rewards/correctness_reward/mean",
    "rewards/format_reward/mean",
    "frac_reward_zero_std",
    "completions/mean_length",
    "completions/clipped_ratio",
    "kl",
    "entropy",
)


def run_resources(started_load: float | None = None) -> dict[str, Any]:
    """CPU, threads and load (at the start of the run) and peak resident memory of this process and the
    processes it waited for, in GiB: what a wall time depends on."""
    import resource

    from ehrmind.runtime import cpu_facts

    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    facts = cpu_facts()
    if started_load is not None:
        facts["load_average_at_start"] = round(started_load, 2)
    return {**facts, "peak_rss_gib": round(peak_kb / 1024**2, 2)}


def _machine(resources: dict[str, Any], wall_seconds: float) -> str:
    parts = [f"wall time {wall_seconds / 60:.1f} min"]
    if resources.get("peak_rss_gib") is not None:
        parts.append(f"peak memory {resources['peak_rss_gib']:.2f} GiB")
    if resources.get("cpu"):
        threads = resources.get("torch_threads")
        parts.append(
            f"{resources['cpu']}, {resources.get('cpus')} CPUs"
            + (f", {threads} torch threads" if threads else "")
        )
    if resources.get("load_average_at_start") is not None:
        parts.append(f"load average {resources['load_average_at_start']} at the start")
    return "; ".join(parts)


def _one_line(comparisons: dict[str, dict[str, Any]]) -> str:
    """Whether the warm-up and GRPO each helped, by their paired 95% intervals (strict accuracy)."""

    def said(c: dict[str, Any]) -> str:
        lo, hi = c["ci95"]
        word = "helped" if lo > 0 else "hurt" if hi < 0 else "made no detectable difference"
        return f"{word} ({fmt_diff(c)})"

    return (
        f"the SFT warm-up {said(comparisons['sft_vs_base'])}; GRPO after it "
        f"{said(comparisons['grpo_vs_sft'])} — strict accuracy, paired 95% intervals."
    )


def _teacher(s: DemoSettings, slipped: dict[str, int]) -> str:
    parts = [
        f"in {slipped.get(name, 0)} of them — {100 * rate:.0f}% of the notes where “{name}” is present — it reads "
        "the finding right but gives it no points, and the total and answer follow"
        for name, rate in s.teacher_slips
    ]
    return "; ".join(parts) or "no slips"


def _wilson(m: dict[str, Any], kind: str) -> list[float] | None:
    from ehrmind.metrics import wilson_ci

    if kind == "strict" and m.get("strict_accuracy") is not None:
        return wilson_ci(round(m["strict_accuracy"] * m["n"]), m["n"])
    return m.get("ci95")


def _headroom(diagnosis: dict[str, Any], rl_trl: dict[str, Any]) -> list[str]:
    over = diagnosis["overall"]
    k = diagnosis["k"]
    lines = [
        f"`ehrmind diagnose` on {over['n']} development notes, {diagnosis['samples']} samples each at the "
        f"temperature GRPO samples with ({rl_trl.get('temperature')}): **pass@1 {_pct(over['pass_at_1'])}, "
        f"pass@{k} {_pct(over['pass_at_k'])}**. RL can only sharpen what sampling already finds: the gap between "
        "pass@1 and pass@k is the room GRPO has.",
        "",
        f"| group | n | pass@1 | pass@{k} | verdict |",
        "|---|---:|---:|---:|---|",
        f"| all | {over['n']} | {_pct(over['pass_at_1'])} | {_pct(over['pass_at_k'])} | {over.get('verdict')} |",
    ]
    for name, b in (diagnosis.get("by_calculator_name") or {}).items():
        lines.append(
            f"| {name} | {b['n']} | {_pct(b['pass_at_1'])} | {_pct(b['pass_at_k'])} | {b.get('verdict')} |"
        )
    curve = over.get("pass_at") or {}
    if curve:
        lines += ["", "pass@j: " + ", ".join(f"j={j}: {_pct(v)}" for j, v in curve.items()) + "."]
    lines += ["", "Full diagnosis: [diagnosis/report.md](diagnosis/report.md)."]
    return lines


def _training_lines(sft_log: list[dict], rl_log: list[dict], curve: list[dict]) -> list[str]:
    lines = []
    losses = [h["loss"] for h in sft_log if "loss" in h]
    if losses:
        lines.append(f"- SFT loss: {losses[0]:.2f} at the first logged step, {losses[-1]:.2f} at the last.")
    steps = [h for h in rl_log if "reward" in h]
    if steps:
        k = max(1, len(steps) // 4)
        first = sum(h["reward"] for h in steps[:k]) / k
        last = sum(h["reward"] for h in steps[-k:]) / k
        zero = [h.get("frac_reward_zero_std") for h in steps if h.get("frac_reward_zero_std") is not None]
        clipped = [h.get("completions/clipped_ratio") for h in steps if "completions/clipped_ratio" in h]
        lines.append(
            f"- GRPO mean reward (1.1 correct, 0 wrong, −2 bad format): first {k} steps {first:.2f}, last {k} "
            f"steps {last:.2f}."
        )
        if zero:
            lines.append(
                f"- Groups with zero reward variance (no learning signal): {100 * sum(zero) / len(zero):.0f}% "
                "on average."
            )
        if clipped:
            lines.append(
                f"- Completions cut at max_completion_length: {100 * sum(clipped) / len(clipped):.1f}% on average."
            )
    if len(curve) > 1:
        pts = ", ".join(f"step {p['step']}: {_pct(p['strict_accuracy'])}" for p in curve)
        lines.append(
            f"- Learning curve (strict accuracy on the first {curve[0]['n']} evaluation items): {pts}."
        )
    return lines


def _plot_training(
    path: Path, sft_log: list[dict], rl_log: list[dict], curve: list[dict], subtitle: str, split: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 3.8))
    pts = [(h["step"], h["loss"]) for h in sft_log if "loss" in h]
    if pts:
        a.plot(*zip(*pts, strict=True), color="#4C72B0")
    a.set(title="SFT warm-up: training loss", xlabel="step", ylabel="loss")
    for key, label, color in (
        ("reward", "total", "black"),
        ("rewards/correctness_reward/mean", "correctness", "#55A868"),
        ("rewards/format_reward/mean", "format", "#C44E52"),
    ):
        pts = [(h["step"], h[key]) for h in rl_log if key in h]
        if pts:
            b.plot(*zip(*pts, strict=True), label=label, color=color)
    b.set(title="GRPO: mean reward per step", xlabel="step", ylabel="reward")
    b.legend(fontsize=8)
    if curve:
        xs = [p["step"] for p in curve]
        c.plot(xs, [100 * (p["strict_accuracy"] or 0) for p in curve], "o-", label="strict", color="#4C72B0")
        c.plot(xs, [100 * (p["accuracy"] or 0) for p in curve], "s--", label="lenient", color="#DD8452")
        c.set(
            title=f"GRPO: accuracy on {curve[0]['n']} {split} items",
            xlabel="GRPO step (0 = after the warm-up)",
            ylabel="accuracy (%)",
            ylim=(0, 100),
        )
        c.legend(fontsize=8)
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_stages(
    path: Path, stages: dict[str, dict[str, Any]], comparisons: dict[str, Any], subtitle: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(STAGES))
    for offset, key, label in ((-0.2, "strict_accuracy", "strict"), (0.2, "accuracy", "lenient")):
        acc = np.array([100 * (stages[st][key] or 0) for st in STAGES])
        cis = [
            _wilson(stages[st], "strict" if key == "strict_accuracy" else "lenient") or [0, 0]
            for st in STAGES
        ]
        err = np.array([[v - 100 * ci[0] for v, ci in zip(acc, cis, strict=True)],
                        [100 * ci[1] - v for v, ci in zip(acc, cis, strict=True)]]).clip(min=0)  # fmt: skip
        a.bar(x + offset, acc, 0.4, yerr=err, capsize=3, label=label)
    a.set_xticks(x, [STAGE_LABELS[st] for st in STAGES], fontsize=8)
    a.set(ylabel="accuracy (%)", ylim=(0, 100), title="Accuracy per stage (95% Wilson CI)")
    a.legend(fontsize=8)
    names = list(COMPARISONS)
    for offset, kind in ((-0.2, "strict"), (0.2, "lenient")):
        cs = [comparisons[n] if kind == "strict" else comparisons[n]["lenient"] for n in names]
        d = np.array([100 * c["difference"] for c in cs])
        err = np.array([[v - 100 * c["ci95"][0] for v, c in zip(d, cs, strict=True)],
                        [100 * c["ci95"][1] - v for v, c in zip(d, cs, strict=True)]]).clip(min=0)  # fmt: skip
        b.bar(np.arange(len(names)) + offset, d, 0.4, yerr=err, capsize=3, label=kind)
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(
        np.arange(len(names)), [COMPARISONS[n][2].replace(" vs. ", "\nvs. ") for n in names], fontsize=7
    )
    b.set(ylabel="difference (points)", title="Paired differences (95% bootstrap CI)")
    b.legend(fontsize=8)
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
