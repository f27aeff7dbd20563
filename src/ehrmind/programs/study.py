"""`ehrmind demo --study`: EHRMind's central claim at laptop scale, measured with the project's own tools.

A tiny model is pretrained (plain SFT, standing in for a general model) on synthetic notes for calculators
A (mean arterial pressure, BMI), so it knows them imperfectly; calculator B (ideal body weight) is absent
from its pretraining. `diagnose` (pass@k) should call A *misapplied* and B *missing*. Four arms then start
from that model — nothing, RL only, SFT warm-up only (a small sample covering A and B, plus B's knowledge
card), SFT warm-up then RL — over several seeds, and are evaluated on held-out notes. The SFT stage is the
same in "SFT only" and "SFT→RL", and the RL stage the same in "RL only" and "SFT→RL" (same examples, steps
and settings). Whatever the numbers say is what the report says.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ehrmind.io import atomic_write_json, atomic_write_jsonl, atomic_write_text
from ehrmind.registry import get_task

log = logging.getLogger(__name__)

A = ("map", "bmi")
B = ("ibw",)
GROUP_OF = {"Mean Arterial Pressure (MAP)": "A", "Body Mass Index (BMI)": "A", "Ideal Body Weight": "B"}
ARMS = ("nothing", "rl", "sft", "sft_rl")
ARM_LABELS = {"nothing": "nothing", "rl": "RL only", "sft": "SFT warm-up only", "sft_rl": "SFT warm-up → RL"}


@dataclass
class StudySettings:
    seeds: tuple[int, ...] = (0, 1, 2)
    n_pretrain: int = 400
    pretrain_epochs: int = 8
    n_heldout_per_calc: int = 30
    n_warmup_per_calc: int = 15
    warmup_epochs: int = 6
    n_rl: int = 240
    rl_steps: int = 40
    k: int = 8
    threshold: float = 0.2
    """pass@k at or above which a calculator's knowledge counts as present (misapplied), for a tiny model."""
    max_new_tokens: int = 160


def _rows(path: Path, n: int, seed: int, calculators: tuple[str, ...]) -> Path:
    from ehrmind.tasks.synthetic.notes import make_rows

    atomic_write_jsonl(path, make_rows(n, seed=seed, calculators=calculators))
    return path


def _trl(epochs: int | None = None, steps: int | None = None, **extra: Any) -> list[str]:
    out = [f"trl.save_steps={10**6}"]
    if epochs is not None:
        out.append(f"trl.num_train_epochs={epochs}")
    if steps is not None:
        out.append(f"trl.max_steps={steps}")
    return out + [f"trl.{k}={v}" for k, v in extra.items()]


def _card_rows(tokenizer_path: Path) -> list[dict[str, str]]:
    """B's knowledge card as prompt/completion text in the model's own chat template."""
    from transformers import AutoTokenizer

    from ehrmind.generate.chat import render_prompt
    from ehrmind.tasks.medcalc.calculators import get_calculator
    from ehrmind.tasks.medcalc.cards import card_item

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    item = card_item(get_calculator(10))
    prompt = render_prompt(tok, item["prompt"])
    if tok.bos_token and prompt.startswith(tok.bos_token) and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
        prompt = prompt[len(tok.bos_token) :]
    return [
        {"prompt": prompt, "completion": item["completion"][0]["content"]}
    ] * 3  # a few copies: a small card


def rewrite_report(out_dir: str | Path) -> Path:
    """Re-render report.md and the plot from a finished study's metrics.json (no training)."""
    import json

    out = Path(out_dir)
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    st = m["settings"]
    settings = StudySettings(**{**st, "seeds": tuple(st["seeds"])})
    return write_study_report(out, m["diagnosis"], m["arms"], settings, wall_seconds=m["wall_seconds"])


def run_study(out_dir: str | Path, settings: StudySettings | None = None) -> Path:
    from ehrmind.eval.diagnose import DiagnosisSettings, diagnose_rows
    from ehrmind.programs.experiment import evaluate as evaluate_split
    from ehrmind.recipes import STUDY
    from ehrmind.train.recipe import load_recipe
    from ehrmind.train.rl import run_rl
    from ehrmind.train.sft import run_sft
    from ehrmind.train.tiny import build_tiny_model

    s = settings or StudySettings()
    started = time.monotonic()
    out = Path(out_dir)
    task = get_task("medcalc")
    data = out / "data"
    pretrain = _rows(data / "pretrain_A.jsonl", s.n_pretrain, 101, A)
    heldout_path = _rows(data / "heldout_AB.jsonl", s.n_heldout_per_calc * 3, 102, A + B)
    warmup = _rows(data / "warmup_AB.jsonl", s.n_warmup_per_calc * 3, 103, A + B)
    rl_data = _rows(data / "rl_AB.jsonl", s.n_rl, 104, A + B)
    heldout = task.load(heldout_path)
    log.info("[study] data: pretrain on A (%d rows), held-out A+B (%d rows)", s.n_pretrain, len(heldout))

    def evaluate(model: Path, name: str, samples: int = 1, temperature: float = 0.0) -> list[dict[str, Any]]:
        _, rows = evaluate_split(
            task,
            heldout,
            heldout_path,
            model,
            out / "eval" / name,
            max_new_tokens=s.max_new_tokens,
            samples=samples,
            temperature=temperature,
            batch_size=16,
        )
        return rows

    # 1. the "general model": plain SFT on A only
    tiny = out / "tiny"
    if not (tiny / "config.json").exists():
        build_tiny_model(tiny, size="tiny", seed=0)
    general = out / "general"
    run_sft(
        load_recipe(
            STUDY,
            [
                f"data={pretrain}",
                f"model={tiny}",
                f"output_dir={general}",
                "seed=0",
                *_trl(epochs=s.pretrain_epochs),
            ],
            stage="sft",
        )
    )
    log.info("[study] general model pretrained on A in %s", general)

    # 2. diagnosis: pass@k per calculator
    rows = evaluate(general, "diagnosis", samples=s.k, temperature=1.0)
    diag_settings = DiagnosisSettings(k=s.k, threshold=s.threshold)
    diagnosis, _ = diagnose_rows(task, heldout, rows, diag_settings)
    atomic_write_json(out / "diagnosis.json", diagnosis)

    # 3. the arms
    cards = _card_rows(general)
    correct: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)  # arm -> seed -> id -> correct
    base = evaluate(general, "nothing")
    for seed in s.seeds:
        correct["nothing"][seed] = {r["id"]: float(bool(r["correct"])) for r in base}
        sft_dir, rl_dir, sft_rl_dir = (out / "arms" / f"{arm}-seed{seed}" for arm in ("sft", "rl", "sft_rl"))
        run_sft(
            load_recipe(
                STUDY,
                [
                    f"data={warmup}",
                    f"model={general}",
                    f"output_dir={sft_dir}",
                    f"seed={seed}",
                    *_trl(epochs=s.warmup_epochs, learning_rate=1e-3),
                ],
                stage="sft",
            ),
            cards,
        )
        rl_over = [f"data={rl_data}", f"seed={seed}", *_trl(steps=s.rl_steps)]
        run_rl(load_recipe(STUDY, [*rl_over, f"model={general}", f"output_dir={rl_dir}"], stage="rl"))
        run_rl(load_recipe(STUDY, [*rl_over, f"model={sft_dir}", f"output_dir={sft_rl_dir}"], stage="rl"))
        for arm, model in (("sft", sft_dir), ("rl", rl_dir), ("sft_rl", sft_rl_dir)):
            preds = evaluate(model, f"{arm}-seed{seed}")
            correct[arm][seed] = {r["id"]: float(bool(r["correct"])) for r in preds}
        log.info("[study] seed %d done", seed)

    results = summarize_arms(correct, {ex.id: GROUP_OF[ex.metadata["calculator_name"]] for ex in heldout})
    wall = time.monotonic() - started
    return write_study_report(out, diagnosis, results, s, wall_seconds=wall)


def summarize_arms(
    correct: dict[str, dict[int, dict[str, float]]], group_of: dict[str, str], resamples: int = 2000
) -> dict[str, dict[str, Any]]:
    """Accuracy per arm and group: each item's correctness averaged over seeds, then the mean over items;
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


def _claim(results: dict, better: str, than: str, group: str) -> tuple[bool, str]:
    a, b = results[better][group], results[than][group]
    diff = 100 * (a["accuracy"] - b["accuracy"])
    clear = a["ci95"][0] > b["ci95"][1]
    text = (
        f"{ARM_LABELS[better]} vs {ARM_LABELS[than]} on {group}: {100 * a['accuracy']:.1f}% vs "
        f"{100 * b['accuracy']:.1f}% ({diff:+.1f} points; "
        + ("intervals do not overlap" if clear else "intervals overlap")
        + ")"
    )
    return clear, text


def _format_errors(out: Path, arm: str, seeds: tuple[int, ...]) -> float | None:
    """Mean format-error rate of an arm's held-out evaluations over seeds (from their metrics.json)."""
    import json

    names = ["nothing"] if arm == "nothing" else [f"{arm}-seed{sd}" for sd in seeds]
    rates = []
    for name in names:
        path = out / "eval" / name / "metrics.json"
        if path.exists():
            rates.append(json.loads(path.read_text(encoding="utf-8"))["format_error_rate"])
    return sum(rates) / len(rates) if rates else None


def write_study_report(
    out: Path, diagnosis: dict, results: dict, s: StudySettings, *, wall_seconds: float
) -> Path:
    _plot(out / "study.png", results)
    by_calc = diagnosis.get("by_calculator_name", {})
    lines = [
        "# Missing vs misapplied knowledge: SFT→RL vs either alone, at laptop scale",
        "",
        f"Tiny model, synthetic MedCalc-format notes. A = mean arterial pressure and BMI (in the general model's "
        f"pretraining, {s.n_pretrain} rows); B = ideal body weight (absent). Held-out: {s.n_heldout_per_calc} notes "
        f"per calculator. Seeds: {', '.join(map(str, s.seeds))}. Wall time {wall_seconds / 60:.1f} min.",
        "",
        f"## 1. Diagnosis of the general model (pass@k, k={s.k}, temperature 1.0, misapplied when pass@k ≥ "
        f"{s.threshold:g})",
        "",
        "| calculator | group | n | pass@1 | pass@k | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, blk in by_calc.items():
        lines.append(
            f"| {name} | {GROUP_OF.get(name, '?')} | {blk.get('n')} | {100 * blk.get('pass_at_1', 0):.1f}% | "
            f"{100 * blk.get('pass_at_k', 0):.1f}% | {blk.get('verdict')} |"
        )
    verdict_a = {by_calc[n].get("verdict") for n in by_calc if GROUP_OF.get(n) == "A"}
    verdict_b = {by_calc[n].get("verdict") for n in by_calc if GROUP_OF.get(n) == "B"}
    lines += [
        "",
        f"Expected: A misapplied, B missing. Found: A {', '.join(sorted(map(str, verdict_a)))}; "
        f"B {', '.join(sorted(map(str, verdict_b)))}.",
        "",
        "## 2. Held-out accuracy per arm (mean over seeds; 95% interval over items)",
        "",
        "![accuracy per arm](study.png)",
        "",
        "| arm | A | B | A per seed | B per seed | format errors |",
        "|---|---:|---:|---|---|---:|",
    ]
    for arm in ARMS:
        ra, rb = results[arm]["A"], results[arm]["B"]
        cell = lambda r: f"{100 * r['accuracy']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]"  # noqa: E731
        seeds = lambda r: ", ".join(f"{100 * x:.0f}%" for x in r["per_seed"])  # noqa: E731
        fe = _format_errors(out, arm, s.seeds)
        fe_text = "—" if fe is None else f"{100 * fe:.1f}%"
        lines.append(
            f"| {ARM_LABELS[arm]} | {cell(ra)} | {cell(rb)} | {seeds(ra)} | {seeds(rb)} | {fe_text} |"
        )
    checks = [
        ("RL alone raises A", _claim(results, "rl", "nothing", "A")),
        ("RL alone does not raise B", _claim(results, "rl", "nothing", "B")),
        ("the warm-up raises B", _claim(results, "sft", "nothing", "B")),
    ]
    best = [_claim(results, "sft_rl", other, g) for g in ("A", "B") for other in ("nothing", "rl", "sft")]
    checks.append(
        ("SFT→RL is best on both A and B", (all(c for c, _ in best), "; ".join(t for _, t in best)))
    )
    lines += ["", "## 3. Does the expected pattern appear?", ""]
    for claim, (clear, text) in checks:
        holds = (not clear) if claim.startswith("RL alone does not") else clear
        lines.append(f"- **{claim}**: {'yes' if holds else 'not shown'} — {text}.")
    lines += [
        "",
        "What was tried: one configuration, the settings below (see docs/STUDY.md for this run's reading and "
        "what to change next).",
        "",
        "A claim counts as shown only when the 95% intervals do not overlap. At this scale (a 189k-parameter "
        "model, a few hundred notes, tens of RL steps) a claim that is not shown may still hold for real "
        "models: this is a demonstration of the mechanism and of the measurement, not evidence about 3B models.",
        "",
        "Settings: "
        + ", ".join(f"{k}={v}" for k, v in asdict(s).items())
        + ". Recipe: `src/ehrmind/recipes/study.yaml` "
        "(general model: its SFT settings; warm-up: lr 1e-3; RL: its GRPO settings). Per-run reports: "
        "`eval/*/report.md`; diagnosis: `diagnosis.json`.",
        "",
    ]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    atomic_write_json(
        out / "metrics.json",
        {"diagnosis": diagnosis, "arms": results, "settings": asdict(s), "wall_seconds": wall_seconds},
    )
    return report


def _plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.2
    for i, arm in enumerate(ARMS):
        xs, ys, lo, hi = [], [], [], []
        for j, group in enumerate(("A", "B")):
            r = results[arm][group]
            xs.append(j + (i - 1.5) * width)
            ys.append(100 * r["accuracy"])
            lo.append(max(0.0, 100 * (r["accuracy"] - r["ci95"][0])))
            hi.append(max(0.0, 100 * (r["ci95"][1] - r["accuracy"])))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=ARM_LABELS[arm])
    ax.set_xticks([0, 1], ["A (known, misapplied)", "B (absent, missing)"])
    ax.set(ylabel="held-out accuracy (%)", ylim=(0, 100), title="Accuracy per arm (95% CI over items)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
