"""`ehrmind demo --study`: EHRMind's central claim at laptop scale, measured the way the demo measures.

Two point-sum calculators. **A** = FeverPAIN (33), known imperfectly: the "general model" every arm starts
from is the demo's warm-up — a small model trained on an imperfect teacher's FeverPAIN worked examples (it
gives "no cough or coryza" no points in 60% of the notes that have it), so sampling often finds the right
total that greedy decoding misses. **B** = Wells' criteria for DVT (16), missing: the general model never
saw it. `ehrmind diagnose` (pass@k, reliable pass@k for guessable scores) should call A misapplied and B
missing.

Four arms start from the general model, each over several seeds: nothing; RL only (GRPO on A and B notes);
SFT warm-up only (B's worked examples — their first reasoning line is B's knowledge card, inside the output
contract — plus a smaller share of A's from the same imperfect teacher); SFT warm-up → RL. The warm-up is
the same in "SFT only" and "SFT → RL", the RL stage the same in "RL only" and "SFT → RL" (data, steps,
settings). Every claim is a paired comparison on the same held-out items, over items and seeds
(`experiment.compare`). Whatever the numbers say is what the report says.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ehrmind.io import atomic_write_json, atomic_write_text
from ehrmind.programs.demo import _pct, finished, teacher_rationales
from ehrmind.programs.experiment import (
    REPORTED_DIAGNOSIS,
    compare,
    evaluate_stage,
    fmt_diff,
    item_scores,
    synthetic_split,
    verdict,
)
from ehrmind.registry import get_task

log = logging.getLogger(__name__)

A = (33,)
B = (16,)
GROUP_OF = {"FeverPAIN Score for Strep Pharyngitis": "A", "Wells' Criteria for DVT": "B"}
GROUP_LABELS = {"A": "A: FeverPAIN (known, misapplied)", "B": "B: Wells' DVT (missing)"}
ARMS = ("nothing", "rl", "sft", "sft_rl")
ARM_LABELS = {"nothing": "nothing", "rl": "RL only", "sft": "SFT warm-up only", "sft_rl": "SFT warm-up → RL"}


@dataclass
class StudySettings:
    """The study's data, warm-up and evaluation; GRPO's and the general model's settings are the recipe's
    (`src/ehrmind/recipes/study.yaml`)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the arms (warm-up and RL); the general model is trained once, with `general_seed`."""
    general_seed: int = 0
    n_general: int = 1600
    """A's worked examples for the general model (the demo's warm-up: 200 steps × 8)."""
    teacher_slips: tuple[tuple[str, float], ...] = (("Absence of cough or coryza", 0.6),)
    """How the teacher of A's worked examples slips (as in the demo): the general model and the warm-up's
    A share both learn from it, so only the reward can correct A."""
    n_warmup_b: int = 1000
    n_warmup_a: int = 200
    warmup_steps: int = 150
    warmup_lr: float = 2e-3
    n_rl: int = 400
    """RL notes, A and B interleaved (gold answers only)."""
    n_dev: int = 200
    n_heldout: int = 300
    diagnose_items: int = 80
    k: int = 8
    size: str = "small"
    max_new_tokens: int = 256
    batch_size: int = 32
    data_seed: int = 0
    evaluate_on: Literal["heldout", "dev"] = "heldout"
    """Where the arms are compared: the held-out split (reported numbers) or the development split (while
    choosing settings, which must never look at the held-out split)."""
    reasoning: str = "compact"

    def __post_init__(self) -> None:
        if self.evaluate_on not in ("heldout", "dev"):
            raise ValueError(f"evaluate_on must be 'heldout' or 'dev', got {self.evaluate_on!r}")

    def split_seed(self, split: str) -> int:
        """Distinct note streams per split (and per data seed), apart from the demo's."""
        splits = ("general", "warmup_b", "warmup_a", "rl", "dev", "heldout")
        return 1000 * (self.data_seed + 1) + splits.index(split) + 1


def run_study(
    out_dir: str | Path,
    settings: StudySettings | None = None,
    *,
    sft_overrides: tuple[str, ...] = (),
    rl_overrides: tuple[str, ...] = (),
    progress: bool = True,
) -> Path:
    """Run (or resume) the study into `out_dir`; returns the path of `report.md`. `sft_overrides` (`--set`
    style) apply to the general model and the warm-up, `rl_overrides` to both RL stages."""
    from ehrmind.eval.diagnose import DiagnosisSettings, run_diagnose
    from ehrmind.generate.settings import GenerationSettings
    from ehrmind.recipes import STUDY
    from ehrmind.snapshot import EXAMPLES, write_snapshot
    from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.rl import run_rl
    from ehrmind.train.sft import run_sft
    from ehrmind.train.tiny import build_tiny_model

    s = settings or StudySettings()
    started = time.monotonic()
    timings: dict[str, float] = {}
    out = Path(out_dir)
    opts = load_recipe(STUDY, stage="sft").task_options.model_dump()
    task = get_task("medcalc", **opts)

    def clock(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)

    # 1. data: disjoint splits; evaluation splits exclude every training note
    t0 = time.monotonic()
    data = out / "data"
    paths, splits = {}, {}
    train_notes: set[str] = set()
    plan = (
        ("general", A, s.n_general), ("warmup_b", B, s.n_warmup_b), ("warmup_a", A, s.n_warmup_a),
        ("rl", A + B, s.n_rl), ("dev", A + B, s.n_dev), ("heldout", A + B, s.n_heldout),
    )  # fmt: skip
    for split, calcs, n in plan:
        paths[split], splits[split] = synthetic_split(
            task,
            data,
            split,
            calcs,
            n,
            s.split_seed(split),
            max_distractors=0,
            reasoning=s.reasoning,
            exclude_notes=train_notes if split in ("dev", "heldout") else (),
        )
        if split not in ("dev", "heldout"):
            train_notes |= {ex.input["note"] for ex in splits[split]}
    paths["general"], splits["general"], slipped = teacher_rationales(
        task, splits["general"], data, s.teacher_slips, seed=s.split_seed("general"), reasoning=s.reasoning,
        name="general_teacher",
    )  # fmt: skip
    _, warm_a, slipped_warm = teacher_rationales(
        task, splits["warmup_a"], data, s.teacher_slips, seed=s.split_seed("warmup_a"), reasoning=s.reasoning,
        name="warmup_a_teacher",
    )  # fmt: skip
    warmup = splits["warmup_b"] + warm_a
    write_snapshot(
        task, warmup, "study warm-up: B worked examples + A from the imperfect teacher", data / "warmup"
    )
    paths["warmup"] = data / "warmup" / EXAMPLES
    clock("data", t0)
    log.info(
        "[study 1/6] notes: general %d (A), warm-up %d B + %d A, RL %d, development %d, held-out %d",
        s.n_general, s.n_warmup_b, s.n_warmup_a, s.n_rl, s.n_dev, s.n_heldout,
    )  # fmt: skip

    # 2. a small random model whose tokenizer is trained on the training notes only
    model_dir = out / "model"
    if not (model_dir / "config.json").exists():
        corpus = [opts["system_prompt"] or ""]
        for ex in splits["general"] + warmup + splits["rl"]:
            corpus += [ex.input["note"], ex.input["question"], str(ex.metadata.get("explanation", ""))]
        build_tiny_model(model_dir, size=s.size, seed=s.general_seed, corpus=corpus, texts=tiny_corpus())
    model_info = json.loads((model_dir / "ehrmind_tiny.json").read_text(encoding="utf-8"))

    # 3. the general model: the demo's warm-up, on A only
    t0 = time.monotonic()
    general = out / "general"
    g = load_recipe(
        STUDY,
        [
            f"seed={s.general_seed}",
            f"data={paths['general']}",
            f"model={model_dir}",
            f"output_dir={general}",
            *sft_overrides,
        ],
        stage="sft",
    )
    if not finished(g):
        run_sft(g)
    clock("general", t0)
    log.info("[study 2/6] general model (A only, imperfect teacher) in %s", general)

    eval_examples, eval_path = splits[s.evaluate_on], paths[s.evaluate_on]
    group_of = {ex.id: GROUP_OF[ex.metadata["calculator_name"]] for ex in eval_examples}

    def eval_arm(model: Path, name: str) -> list[dict[str, Any]]:
        t = time.monotonic()
        _, rows = evaluate_stage(
            task,
            eval_examples,
            eval_path,
            model,
            out / "eval" / name,
            max_new_tokens=s.max_new_tokens,
            batch_size=s.batch_size,
            progress=progress,
        )
        clock(f"eval_{name}", t)
        return rows

    rows: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)  # arm -> seed -> rows
    rows["nothing"]["-"] = eval_arm(general, "nothing")

    # 4. diagnosis of the general model on the development split, sampled as GRPO samples
    t0 = time.monotonic()
    rl_trl = load_recipe(STUDY, list(rl_overrides), stage="rl").trl
    diagnosis = run_diagnose(
        "medcalc",
        str(paths["dev"]),
        out / "diagnosis",
        DiagnosisSettings(k=s.k, **REPORTED_DIAGNOSIS),
        model=str(general),
        limit=s.diagnose_items,
        generation=GenerationSettings(
            samples=s.k,
            temperature=float(rl_trl.get("temperature", 1.0)),
            top_p=float(rl_trl.get("top_p", 1.0)),
            max_new_tokens=s.max_new_tokens,
            batch_size=s.batch_size,
            seed=s.general_seed,
        ),
        prefill=opts["prefill"],
        task_options={"system_prompt": opts["system_prompt"]},
        progress=progress,
    )
    clock("diagnosis", t0)
    log.info("[study 3/6] diagnosis: %s", _verdicts(diagnosis))

    # 5. the arms, per seed
    for seed in s.seeds:
        arm_dir = out / "arms"
        sft = load_recipe(
            STUDY,
            [
                f"seed={seed}", f"data={paths['warmup']}", f"model={general}",
                f"output_dir={arm_dir / f'sft-seed{seed}'}", f"trl.max_steps={s.warmup_steps}",
                f"trl.learning_rate={s.warmup_lr}", *sft_overrides,
            ],
            stage="sft",
        )  # fmt: skip
        rl_over = [f"seed={seed}", f"data={paths['rl']}", *rl_overrides]
        rl = load_recipe(
            STUDY, [*rl_over, f"model={general}", f"output_dir={arm_dir / f'rl-seed{seed}'}"], stage="rl"
        )
        sft_rl = load_recipe(
            STUDY,
            [*rl_over, f"model={sft.output_dir}", f"output_dir={arm_dir / f'sft_rl-seed{seed}'}"],
            stage="rl",
        )
        for arm, recipe, runner in (("sft", sft, run_sft), ("rl", rl, run_rl), ("sft_rl", sft_rl, run_rl)):
            t0 = time.monotonic()
            if not finished(recipe):
                runner(recipe)
            clock(f"{arm}-seed{seed}", t0)
            rows[arm][str(seed)] = eval_arm(Path(recipe.output_dir), f"{arm}-seed{seed}")
            log.info(
                "[study 4/6] seed %d, %s: %s",
                seed,
                ARM_LABELS[arm],
                _accuracy_line(rows[arm][str(seed)], group_of),
            )

    # 6. summaries and claims
    accuracy = {
        kind: summarize_arms(
            {
                arm: {sd: item_scores(r, strict=kind == "strict") for sd, r in by_seed.items()}
                for arm, by_seed in rows.items()
            },
            group_of,
        )
        for kind in ("strict", "lenient")
    }
    comparisons = arm_comparisons(rows, group_of)
    log.info("[study 5/6] %d paired comparisons", len(comparisons))
    return write_study_report(
        out,
        diagnosis,
        accuracy,
        comparisons,
        s,
        model_info=model_info,
        slipped={"general": slipped, "warmup_a": slipped_warm},
        recipes={"sft": g.model_dump(mode="json"), "rl": rl_trl},
        timings=timings,
        wall_seconds=time.monotonic() - started,
    )


def summarize_arms(
    correct: dict[str, dict[Any, dict[str, float]]], group_of: dict[str, str], resamples: int = 2000
) -> dict[str, dict[str, Any]]:
    """Accuracy per arm and group: each item's score averaged over seeds, then the mean over items;
    95% interval by a percentile bootstrap over items (seed-to-seed spread is reported beside it)."""
    rng = np.random.default_rng(0)
    out: dict[str, dict[str, Any]] = {}
    for arm, by_seed in correct.items():
        out[arm] = {}
        for group in sorted(set(group_of.values())):
            ids = [i for i, g in group_of.items() if g == group]
            per_item = np.array([np.mean([by_seed[sd][i] for sd in by_seed]) for i in ids])
            boots = per_item[rng.integers(0, len(ids), size=(resamples, len(ids)))].mean(axis=1)
            per_seed = [float(np.mean([by_seed[sd][i] for i in ids])) for sd in sorted(by_seed)]
            out[arm][group] = {
                "n_items": len(ids),
                "n_seeds": len(by_seed),
                "accuracy": float(per_item.mean()),
                "ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
                "per_seed": per_seed,
            }
    return out


PAIRS = (("rl", "nothing"), ("sft", "nothing"), ("sft_rl", "nothing"), ("sft_rl", "rl"), ("sft_rl", "sft"))


def arm_comparisons(
    rows: dict[str, dict[str, list[dict[str, Any]]]], group_of: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """`experiment.compare` for each pair of arms and group, e.g. `rl_vs_nothing.A`: the paired difference
    over the group's items and the arms' seeds (an arm with one run is paired with every seed of the other)."""

    def side(arm: str, group: str) -> Any:
        by_seed = {sd: [r for r in rs if group_of.get(str(r["id"])) == group] for sd, rs in rows[arm].items()}
        return next(iter(by_seed.values())) if len(by_seed) == 1 else by_seed

    return {
        f"{after}_vs_{before}": {
            group: compare(side(after, group), side(before, group))
            for group in sorted(set(group_of.values()))
        }
        for after, before in PAIRS
    }


def claims(comparisons: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The study's four claims, each read off paired intervals (strict accuracy; lenient beside it).

    "Raises": the 95% interval of the difference is above 0. "Leaves": it includes 0. "At least as good":
    no comparison of SFT → RL with another arm has its interval below 0."""

    def one(name: str, group: str) -> dict[str, Any]:
        c = comparisons[name][group]
        return {"comparison": name, "group": group, "strict": c, "lenient": c["lenient"]}

    def above(c: dict[str, Any]) -> bool:
        return c["ci95"][0] > 0

    def includes0(c: dict[str, Any]) -> bool:
        return c["ci95"][0] <= 0 <= c["ci95"][1]

    def not_below(c: dict[str, Any]) -> bool:
        return c["ci95"][1] >= 0

    best = [one(f"sft_rl_vs_{o}", g) for g in ("A", "B") for o in ("nothing", "rl", "sft")]
    return [
        {"claim": "RL only raises A", "holds": above(comparisons["rl_vs_nothing"]["A"]),
         "evidence": [one("rl_vs_nothing", "A")]},
        {"claim": "RL only leaves B", "holds": includes0(comparisons["rl_vs_nothing"]["B"]),
         "evidence": [one("rl_vs_nothing", "B")]},
        {"claim": "The SFT warm-up raises B", "holds": above(comparisons["sft_vs_nothing"]["B"]),
         "evidence": [one("sft_vs_nothing", "B")]},
        {"claim": "SFT warm-up → RL is at least as good as every other arm, on A and on B",
         "holds": all(not_below(e["strict"]) for e in best), "evidence": best},
    ]  # fmt: skip


def _verdicts(diagnosis: dict[str, Any]) -> str:
    blocks = diagnosis.get("by_calculator_name") or {}
    return "; ".join(
        f"{GROUP_OF.get(n, '?')} {n}: pass@1 {100 * b['pass_at_1']:.0f}%, pass@k {100 * b['pass_at_k']:.0f}%, "
        f"{b.get('verdict')}"
        for n, b in blocks.items()
    )


def _accuracy_line(rows: list[dict[str, Any]], group_of: dict[str, str]) -> str:
    strict = item_scores(rows, strict=True)
    parts = []
    for group in sorted(set(group_of.values())):
        vals = [v for i, v in strict.items() if group_of.get(i) == group]
        parts.append(f"{group} {100 * sum(vals) / max(1, len(vals)):.1f}%")
    return ", ".join(parts) + " (strict)"


def rewrite_report(out_dir: str | Path) -> Path:
    """Re-render report.md and the plot from a finished study's metrics.json (no training)."""
    out = Path(out_dir)
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    st = m["settings"]
    settings = StudySettings(
        **{**st, "seeds": tuple(st["seeds"]), "teacher_slips": tuple(tuple(x) for x in st["teacher_slips"])}
    )
    return write_study_report(
        out,
        m["diagnosis"],
        m["accuracy"],
        m["comparisons"],
        settings,
        model_info=m["model"],
        slipped=m["teacher_slipped"],
        recipes=m["recipes"],
        timings=m["timings_seconds"],
        wall_seconds=m["wall_seconds"],
    )


def guess_floor(out: Path, split: str, seeds: tuple[int, ...]) -> dict[str, Any] | None:
    """What B's accuracy means: answering B's most frequent gold value on every note (a constant needs no
    reading), and the paired difference of each warmed arm from that constant (None before the arms ran)."""
    from collections import Counter

    from ehrmind.eval.runner import PREDICTIONS
    from ehrmind.io import read_jsonl

    examples = [r for r in read_jsonl(out / "data" / split / "examples.jsonl")
                if GROUP_OF.get(r["metadata"].get("calculator_name")) == "B"]  # fmt: skip
    if not examples:
        return None
    value, _ = Counter(r["target"].get("value") for r in examples).most_common(1)[0]
    constant = [
        {"id": r["id"], "correct": r["target"].get("value") == value, "format_ok": True} for r in examples
    ]
    ids = {r["id"] for r in examples}
    floor: dict[str, Any] = {"value": value, "accuracy": sum(r["correct"] for r in constant) / len(constant)}
    for arm in ("sft", "sft_rl"):
        paths = {str(sd): out / "eval" / f"{arm}-seed{sd}" / PREDICTIONS for sd in seeds}
        if not all(p.exists() for p in paths.values()):
            return None
        rows = {sd: [r for r in read_jsonl(p) if r["id"] in ids] for sd, p in paths.items()}
        floor[f"{arm}_vs_constant"] = compare(next(iter(rows.values())) if len(rows) == 1 else rows, constant)
    return floor


def write_study_report(
    out: Path,
    diagnosis: dict[str, Any],
    accuracy: dict[str, dict[str, dict[str, Any]]],
    comparisons: dict[str, dict[str, Any]],
    s: StudySettings,
    *,
    model_info: dict[str, Any],
    slipped: dict[str, dict[str, int]],
    recipes: dict[str, Any],
    timings: dict[str, float],
    wall_seconds: float,
) -> Path:
    """report.md, metrics.json and study.png."""
    checks = claims(comparisons)
    split = "held-out" if s.evaluate_on == "heldout" else "development"
    floor = guess_floor(out, s.evaluate_on, s.seeds)
    n_items = {g: accuracy["strict"]["nothing"][g]["n_items"] for g in ("A", "B")}
    subtitle = (
        f"{model_info['n_parameters'] / 1e6:.1f}M-parameter {s.size} model · {split} notes: "
        f"A n={n_items['A']}, B n={n_items['B']} · seeds {', '.join(map(str, s.seeds))}"
    )
    _plot(out / "study.png", accuracy["strict"], checks, subtitle)
    rl = recipes["rl"]
    per_step = int(rl.get("per_device_train_batch_size", 8)) * int(rl.get("gradient_accumulation_steps", 1))
    lines = [
        "# Missing vs misapplied knowledge: SFT warm-up → RL vs either alone, at laptop scale",
        "",
        f"A {model_info['n_parameters'] / 1e6:.1f}M-parameter {s.size} model, synthetic MedCalc notes. "
        f"**A = FeverPAIN**, known imperfectly: the general model every arm starts from learned it from "
        f"{s.n_general} worked examples of an imperfect teacher (in {slipped['general'].get(s.teacher_slips[0][0], 0)} "
        f"of them it gives “{s.teacher_slips[0][0]}” no points). **B = Wells' criteria for DVT**, missing: the "
        f"general model never saw it. Arms: nothing; RL only ({rl.get('max_steps')} GRPO steps × "
        f"{per_step // int(rl.get('num_generations', 8))} prompts × {rl.get('num_generations')} completions on "
        f"{s.n_rl} A and B notes, gold answers only); SFT warm-up only ({s.warmup_steps} steps on {s.n_warmup_b} "
        f"B worked examples + {s.n_warmup_a} A from the same imperfect teacher); SFT warm-up → RL (the same "
        f"two stages). Seeds: {', '.join(map(str, s.seeds))} (warm-up and RL; the general model is seed "
        f"{s.general_seed}). Evaluated greedily on **{n_items['A']} A and {n_items['B']} B {split} notes** that "
        f"no training split contains. Wall time {wall_seconds / 60:.1f} min.",
        "",
        "## 1. Diagnosis of the general model",
        "",
        *_diagnosis_lines(diagnosis),
        "",
        f"## 2. {split.capitalize()} accuracy per arm",
        "",
        "![accuracy per arm and the claims' paired differences](study.png)",
        "",
        "Strict accuracy (right and in the output contract, what GRPO rewards), each item's score averaged over "
        "seeds; 95% interval by bootstrap over items; per-seed accuracies beside it. Lenient: MedCalc-Bench's "
        "rule on the extracted answer whatever the format.",
        "",
        "| arm | A strict | A per seed | A lenient | B strict | B per seed | B lenient |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    for arm in ARMS:
        cells = []
        for g in ("A", "B"):
            r, lenient = accuracy["strict"][arm][g], accuracy["lenient"][arm][g]
            cells += [
                f"{_pct(r['accuracy'])} [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]",
                ", ".join(f"{100 * x:.0f}%" for x in r["per_seed"]),
                _pct(lenient["accuracy"]),
            ]
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## 3. Claim by claim (paired differences on the same items, over items and seeds)",
        "",
        "| claim | holds? | comparison | group | strict: difference [95% CI] | lenient: difference [95% CI] |",
        "|---|---|---|---|---:|---:|",
    ]
    for c in checks:
        for j, e in enumerate(c["evidence"]):
            after, _, before = e["comparison"].partition("_vs_")
            lines.append(
                ("| " + c["claim"] + " | " + ("**yes**" if c["holds"] else "**no**") if j == 0 else "| |")
                + f" | {ARM_LABELS[after]} − {ARM_LABELS[before]} | {e['group']} | {fmt_diff(e['strict'])} "
                f"({verdict(e['strict']).split(' (')[0]}) | {fmt_diff(e['lenient'])} |"
            )
    lines += [
        "",
        *_floor_lines(floor),
        "Paired bootstrap of the per-item difference (10,000 resamples of items and, where both arms have "
        "several seeds, of seeds; the untrained arm is one run, paired with every seed). *Raises*: the interval "
        "is above 0. *Leaves*: it includes 0. *At least as good*: no interval below 0.",
        "",
        "## How these settings were chosen",
        "",
        (
            "Settings were chosen on the development split with development seeds (docs/STUDY.md lists every "
            "configuration tried, with its result); this run's held-out notes and seeds were not used while "
            "choosing."
            if s.evaluate_on == "heldout"
            else "This is a development run (`--dev`): its numbers are for choosing settings; report numbers "
            "from a held-out run with seeds not used while choosing (docs/STUDY.md)."
        ),
        "",
        "At this scale (a few-million-parameter model, a few thousand synthetic notes, 20 GRPO steps) the study "
        "demonstrates the mechanism and the measurement; it is not evidence about billion-parameter models.",
        "",
        "Settings: "
        + ", ".join(f"{k}={v}" for k, v in asdict(s).items())
        + ". Recipe: `src/ehrmind/recipes/study.yaml`. Per-run reports: `eval/*/report.md`; diagnosis: "
        "[diagnosis/report.md](diagnosis/report.md).",
        "",
    ]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    atomic_write_json(
        out / "metrics.json",
        {
            "evaluated_on": s.evaluate_on,
            "diagnosis": diagnosis,
            "accuracy": accuracy,
            "comparisons": comparisons,
            "claims": [{"claim": c["claim"], "holds": c["holds"]} for c in checks],
            "b_constant_floor": floor,
            "settings": asdict(s),
            "model": model_info,
            "teacher_slipped": slipped,
            "recipes": recipes,
            "timings_seconds": timings,
            "wall_seconds": wall_seconds,
        },
    )
    return report


def _floor_lines(floor: dict[str, Any] | None) -> list[str]:
    if not floor:
        return []
    return [
        f"*B's floor.* Answering {floor['value']} (B's most frequent score) on every B note is right on "
        f"{_pct(floor['accuracy'])} of them with no reading at all. Against that constant, paired: SFT warm-up "
        f"only {fmt_diff(floor['sft_vs_constant'])} ({verdict(floor['sft_vs_constant']).split(' (')[0]}), "
        f"SFT warm-up → RL {fmt_diff(floor['sft_rl_vs_constant'])} "
        f"({verdict(floor['sft_rl_vs_constant']).split(' (')[0]}). The untrained model scores 0 on B because "
        "its answers are not in the output contract for a question it never saw.",
        "",
    ]


def _diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    k = diagnosis["k"]
    s = diagnosis.get("settings") or {}
    blocks = diagnosis.get("by_calculator_name") or {}
    guessable = [name for name, b in blocks.items() if b.get("guessable")]
    rule = (
        f"{' and '.join(guessable)} {'is' if len(guessable) == 1 else 'are'} guessable (few distinct answers), so "
        f"{'its verdict uses' if len(guessable) == 1 else 'their verdicts use'} *reliable* pass@k: an item counts "
        f"only with at least {s.get('min_correct')} correct samples and an answer entropy of at most "
        f"{s.get('max_entropy')} bits (ehrmind's rule, `reliable_rule: ehrmind`, the rule this study was chosen "
        "with). "
        if guessable
        else ""
    )
    lines = [
        f"`ehrmind diagnose` on {diagnosis['overall']['n']} development notes, {diagnosis['samples']} samples "
        f"each at GRPO's temperature ({diagnosis['run'].get('temperature')}). {rule}Guessing Wells' most frequent "
        "value is right on about a quarter of the notes.",
        "",
        f"| calculator | group | n | pass@1 | pass@{k} | reliable pass@{k} | verdict | expected |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for name, b in blocks.items():
        group = GROUP_OF.get(name, "?")
        lines.append(
            f"| {name} | {group} | {b['n']} | {_pct(b['pass_at_1'])} | {_pct(b['pass_at_k'])} | "
            f"{_pct(b.get('reliable_pass_at_k'))} | {b.get('verdict')} | "
            f"{ {'A': 'misapplied', 'B': 'missing'}.get(group, '?') } |"
        )
    return lines


def _plot(
    path: Path, accuracy: dict[str, dict[str, Any]], checks: list[dict[str, Any]], subtitle: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    width = 0.2
    for i, arm in enumerate(ARMS):
        xs, ys, lo, hi = [], [], [], []
        for j, group in enumerate(("A", "B")):
            r = accuracy[arm][group]
            xs.append(j + (i - 1.5) * width)
            ys.append(100 * r["accuracy"])
            lo.append(max(0.0, 100 * (r["accuracy"] - r["ci95"][0])))
            hi.append(max(0.0, 100 * (r["ci95"][1] - r["accuracy"])))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=ARM_LABELS[arm])
    ax.set_xticks([0, 1], [GROUP_LABELS["A"], GROUP_LABELS["B"]], fontsize=8)
    ax.set(ylabel="strict accuracy (%)", ylim=(0, 100), title="Accuracy per arm (95% CI over items)")
    ax.legend(fontsize=7)
    evidence = [(c["claim"], e) for c in checks for e in c["evidence"]]
    labels = [
        f"{ARM_LABELS[e['comparison'].partition('_vs_')[0]]} − {ARM_LABELS[e['comparison'].partition('_vs_')[2]]}, "
        f"{e['group']}"
        for _, e in evidence
    ]
    d = [100 * e["strict"]["difference"] for _, e in evidence]
    err = [
        [max(0.0, v - 100 * e["strict"]["ci95"][0]) for v, (_, e) in zip(d, evidence, strict=True)],
        [max(0.0, 100 * e["strict"]["ci95"][1] - v) for v, (_, e) in zip(d, evidence, strict=True)],
    ]
    ys = list(range(len(evidence)))[::-1]
    bx.errorbar(d, ys, xerr=err, fmt="o", color="#4C72B0", capsize=3)
    bx.axvline(0, color="black", lw=0.8)
    bx.set_yticks(ys, labels, fontsize=7)
    bx.set(xlabel="paired difference in strict accuracy (points)", title="The claims' comparisons (95% CI)")
    fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
