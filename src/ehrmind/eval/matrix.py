"""`ehrmind matrix`: every model on every task — the cross-task generalization view.

Each cell (model × task × prompt mode) is an ordinary, resumable `ehrmind eval` run under
`DIR/runs/<model>/<task>[-<mode>]/`. The matrix reports each cell's accuracy with its 95% interval and the
task's main metric where an analysis declares one (`Analysis.main`: balanced accuracy for EHRSHOT and for TREC CT's
pair classification, MedCalc-Bench's official accuracy for MedCalc, whose `accuracy` is ehrmind's extraction); a
task without one is judged by its accuracy. Outputs: `DIR/matrix.json`, `DIR/matrix.md`
(tables) and `DIR/matrix.png` (heatmaps).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.errors import ConfigError
from ehrmind.generate.backends import Backend
from ehrmind.generate.settings import GenerationSettings
from ehrmind.io import atomic_write_json, atomic_write_text, output_folder
from ehrmind.tasks.analysis import ACCURACY
from ehrmind.tasks.analysis import main_metric as declared_main_metric

log = logging.getLogger(__name__)

MATRIX_JSON = "matrix.json"
MATRIX_MD = "matrix.md"
MATRIX_PNG = "matrix.png"


def main_metric(task: Any, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """{name, value, ci95} of the task's main metric (the one an analysis declares) in its metrics, or None
    when accuracy is the main metric (or the metric has no value)."""
    head = declared_main_metric(task)
    if head is ACCURACY:
        return None
    value, ci = head.read(metrics)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"name": head.label, "key": head.value, "value": float(value), "ci95": ci}
    return None


def model_labels(models: Sequence[str]) -> list[str]:
    """Short, unique, file-safe names: a local folder's name, or a Hub id with '/' as '--'."""
    labels: list[str] = []
    for m in models:
        p = Path(m)
        base = p.name if p.exists() else m.replace("/", "--")
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "model"
        label, i = base, 2
        while label in labels:
            label, i = f"{base}-{i}", i + 1
        labels.append(label)
    return labels


Cell = tuple[str, str, Any, list[Any], Any]
"""(task name, mode, configured Task, examples, PromptChoice): one evaluation of a model."""


def _plan_cells(
    model: str,
    data: dict[str, str],
    modes: Sequence[str] | None,
    split: str | None,
    limit: int | None,
    task_options: dict[str, dict[str, Any]] | None,
    exemplars: str | Path | None,
    loaded: dict[str, list[Any]],
    backend: Backend,
) -> tuple[list[Cell], dict[tuple[str, str], str]]:
    """The cells `model` is evaluated in, every prompt rendered before any model loads, and the (task, mode)
    pairs skipped with the reason. A model folder ehrmind trained is prompted as it was trained
    (`ehrmind.trained`), so each model has its own cells; `loaded` keeps each task's examples across models."""
    from ehrmind.eval.diagnose import check_renders, mode_tasks
    from ehrmind.registry import get_task
    from ehrmind.trained import TrainedPrompt

    trained = TrainedPrompt.of(model, backend)  # once per model (an endpoint is asked once)
    cells: list[Cell] = []
    skipped: dict[tuple[str, str], str] = {}
    for task_name, path in data.items():
        supported = type(get_task(task_name)).contract.modes
        usable = None if modes is None else [m for m in modes if m in supported]
        for m in modes or ():
            if m not in supported:
                skipped[(task_name, m)] = f"task {task_name} has no {m!r} mode"
        if usable == []:
            continue
        tasks = mode_tasks(
            task_name,
            usable,
            task_options=(task_options or {}).get(task_name),
            exemplars=exemplars if usable and "one-shot" in usable else None,
            trained=trained,
            model=model,
        )
        if task_name not in loaded:
            loaded[task_name] = next(iter(tasks.values()))[0].load(path, split)[:limit]
        examples = loaded[task_name]
        if not examples:
            raise ConfigError(f"no examples for task {task_name} in {path}")
        check_renders([t for t, _ in tasks.values()], examples)
        cells += [(task_name, m, t, examples, prompt) for m, (t, prompt) in tasks.items()]
    return cells, skipped


def run_matrix(
    models: Sequence[str],
    data: dict[str, str],
    out_dir: str | Path,
    *,
    modes: Sequence[str] | None = None,
    limit: int | None = None,
    split: str | None = None,
    generation: GenerationSettings | None = None,
    backend: Backend | None = None,
    task_options: dict[str, dict[str, Any]] | None = None,
    exemplars: str | Path | None = None,
    baseline: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate every model on every task (`data`: task name → data path, in column order) in each prompt
    mode; a mode a task does not support is an "n/a" cell. `generation` says how completions are sampled
    (default: one greedy completion) and `backend` where they come from (default: transformers on the CPU).
    `baseline` (one of `models`, e.g. the untrained one) adds, for every other model's cell, the paired
    difference against the baseline's cell on the same items (`compare_to_baseline`). Returns the matrix (also
    written as JSON)."""
    from ehrmind.eval.runner import evaluate_examples

    if not models:
        raise ConfigError("give at least one model (--models A B …)")
    if not data:
        raise ConfigError("give at least one task with its data (--tasks T … --data T=PATH …)")
    gen = generation or GenerationSettings()
    unknown = sorted(set(task_options or {}) - set(data))
    if unknown:
        raise ConfigError(f"--task-option names task(s) not in the matrix: {', '.join(unknown)}")
    out = Path(out_dir)
    labels = model_labels(models)

    loaded: dict[str, list[Any]] = {}  # each task's examples, loaded once
    chosen = backend or Backend()
    plans = [
        _plan_cells(m, data, modes, split, limit, task_options, exemplars, loaded, chosen) for m in models
    ]
    multi_mode = modes is not None and (len(modes) > 1 or modes[0] != "reasoning")
    rows: list[dict[str, Any]] = []
    for model, label, (cells_todo, skipped) in zip(models, labels, plans, strict=True):
        backend = chosen.for_model(model)
        from ehrmind.generate.backends import make_generator

        generator = make_generator(model, gen, backend) if cells_todo else None
        for task_name, mode, task, examples, prompt in cells_todo:
            cell_dir = out / "runs" / label / (f"{task_name}-{mode}" if multi_mode else task_name)
            log.info("matrix: %s on %s (%s)", label, task_name, mode)
            metrics = evaluate_examples(
                task, examples, data[task_name], generator, cell_dir, model=model, settings=gen,
                backend=backend, progress=progress, limit=limit,
                **prompt.record(),
            )  # fmt: skip
            rows.append(
                {
                    "model": label,
                    "model_path": model,
                    "task": task_name,
                    "mode": mode,
                    "n": metrics.get("n"),
                    "accuracy": metrics.get("accuracy"),
                    "ci95": metrics.get("ci95"),
                    "main_metric": main_metric(task, metrics),
                    "data_sha256": metrics["run"]["data_sha256"],
                    "dir": str(cell_dir.relative_to(out)),
                    **({"prompt_overridden": sorted(prompt.overridden)} if prompt.overridden else {}),
                }
            )
        del generator
        for (task_name, mode), reason in skipped.items():
            rows.append(
                {"model": label, "model_path": model, "task": task_name, "mode": mode, "skipped": reason}
            )

    if baseline is not None:
        base_label = _baseline_label(baseline, models, labels)
        compare_to_baseline(out, rows, base_label, by_mode=multi_mode)
    matrix = {
        "models": [{"label": lb, "model": m} for lb, m in zip(labels, models, strict=True)],
        **({"baseline": base_label} if baseline is not None else {}),
        "tasks": [{"task": t, "data": p} for t, p in data.items()],
        "modes": list(modes) if modes is not None else ["as trained (else reasoning)"],
        "settings": {
            "limit": limit,
            "samples": gen.samples,
            "temperature": gen.temperature,
            "top_p": gen.top_p,
            "max_new_tokens": gen.max_new_tokens,
            "seed": gen.seed,
            "exemplars": str(exemplars) if exemplars else None,
        },
        "cells": rows,
    }
    output_folder(out)
    atomic_write_json(out / MATRIX_JSON, matrix)
    write_matrix_report(out, matrix)
    plot_matrix(matrix, out / MATRIX_PNG)
    return matrix


# ---------------------------------------------------------------- paired against a baseline


def _baseline_label(baseline: str, models: Sequence[str], labels: Sequence[str]) -> str:
    for model, label in zip(models, labels, strict=True):
        if baseline in (model, label):
            return label
    raise ConfigError(f"--baseline {baseline!r} is not one of --models ({', '.join(models)})")


def _per_item(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per item: the share of its samples judged correct (lenient: the benchmark's rule), of those correct
    and in the output format (strict), and its gold label when the rows carry one; unscorable items left out."""
    per: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("correct") is None:
            continue
        item = per.setdefault(str(r["id"]), {"lenient": [], "strict": [], "label": r.get("label")})
        item["lenient"].append(float(bool(r["correct"])))
        item["strict"].append(float(bool(r["correct"]) and bool(r.get("format_ok"))))
    return {
        i: {"lenient": sum(v["lenient"]) / len(v["lenient"]), "strict": sum(v["strict"]) / len(v["strict"]),
            "label": v["label"]}
        for i, v in per.items()
    }  # fmt: skip


def paired_balanced_accuracy(
    after: dict[str, dict[str, Any]],
    before: dict[str, dict[str, Any]],
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Balanced accuracy (mean over gold classes of the share correct) after − before on the same items,
    with a paired percentile bootstrap over items; None when the items carry no gold label."""
    import numpy as np

    ids = sorted(set(after) & set(before))
    labels = [after[i]["label"] for i in ids]
    if not ids or any(lb is None for lb in labels):
        return None
    classes = sorted({str(lb) for lb in labels})
    onehot = np.array([[str(lb) == c for c in classes] for lb in labels], dtype=float)  # items × classes
    d = {k: np.array([side[i]["lenient"] for i in ids]) for k, side in (("after", after), ("before", before))}

    def ba(weights: np.ndarray, correct: np.ndarray) -> np.ndarray:  # (B, items) counts → (B,)
        hits = (weights * correct) @ onehot
        totals = weights @ onehot
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(np.where(totals > 0, hits / totals, np.nan), axis=1)

    one = np.ones((1, len(ids)))
    point = float(ba(one, d["after"])[0] - ba(one, d["before"])[0])
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=resamples).astype(float)
    diffs = ba(w, d["after"]) - ba(w, d["before"])
    lo, hi = np.percentile(diffs[np.isfinite(diffs)], [2.5, 97.5])
    return {
        "difference": point,
        "ci95": [float(lo), float(hi)],
        "n": len(ids),
        "method": "paired bootstrap over items",
    }


def compare_to_baseline(out: Path, rows: list[dict[str, Any]], baseline: str, *, by_mode: bool) -> None:
    """For every cell of another model than `baseline`: `vs_baseline`, the paired difference against the
    baseline's cell of the same task (and mode, when the matrix has several) on the items both scored —
    lenient and strict accuracy (paired bootstrap, McNemar with one sample) and, for a task whose main metric
    is balanced accuracy, that metric too, kept only when it reproduces the cell's own value (a task that
    computes it over a subset of rows, or over several samples by vote, gets none rather than a wrong one)."""
    from ehrmind.eval.runner import PREDICTIONS
    from ehrmind.io import read_jsonl
    from ehrmind.metrics import paired_difference

    def key(c: dict[str, Any]) -> tuple[str, str]:
        return (c["task"], c["mode"] if by_mode else "")

    base = {key(c): c for c in rows if c["model"] == baseline and not c.get("skipped")}
    for cell in rows:
        ref = base.get(key(cell))
        if cell["model"] == baseline or cell.get("skipped") or ref is None:
            continue
        after = _per_item(read_jsonl(out / cell["dir"] / PREDICTIONS))
        before = _per_item(read_jsonl(out / ref["dir"] / PREDICTIONS))
        shared = sorted(set(after) & set(before))
        if not shared:
            continue
        result: dict[str, Any] = {"baseline": baseline}
        for name in ("lenient", "strict"):
            a, b = ({i: side[i][name] for i in shared} for side in (after, before))
            result[name] = paired_difference(a, b)
        mm = cell.get("main_metric") or {}
        if mm.get("name") == "balanced accuracy":
            paired = paired_balanced_accuracy({i: after[i] for i in shared}, {i: before[i] for i in shared})
            own = (ref.get("main_metric") or {}).get("value")
            if (
                paired is not None
                and own is not None
                and abs(mm["value"] - own - paired["difference"]) < 1e-9
            ):
                result["main_metric"] = {"name": mm["name"], **paired}
        cell["vs_baseline"] = result


# ---------------------------------------------------------------- table and heatmap


def _grid(matrix: dict[str, Any]) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]]:
    """Row labels (model, or "model [mode]"), task columns, and the cell of each (row, task)."""
    multi_mode = len(matrix["modes"]) > 1
    row_names: list[str] = []
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for m in matrix["models"]:
        for mode in matrix["modes"]:
            name = f"{m['label']} [{mode}]" if multi_mode else m["label"]
            row_names.append(name)
    for c in matrix["cells"]:
        name = f"{c['model']} [{c['mode']}]" if multi_mode else c["model"]
        cells[(name, c["task"])] = c
    return row_names, [t["task"] for t in matrix["tasks"]], cells


def _acc(c: dict[str, Any] | None) -> str:
    if not c or c.get("skipped"):
        return "n/a"
    a, ci = c.get("accuracy"), c.get("ci95")
    if a is None:
        return "—"
    return f"{100 * a:.1f}% [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else f"{100 * a:.1f}%"


def _main(c: dict[str, Any] | None) -> str:
    mm = (c or {}).get("main_metric")
    if not mm:
        return "n/a" if not c or c.get("skipped") else "(accuracy)"
    ci = mm.get("ci95")
    return f"{mm['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{mm['value']:.3f}"


def _override_lines(matrix: dict[str, Any]) -> list[str]:
    """The cells whose prompt differs from the model's training (`ehrmind.trained`), named with the options."""
    cells = [c for c in matrix["cells"] if c.get("prompt_overridden")]
    if not cells:
        return []
    named = "; ".join(f"{c['model']} on {c['task']}: {', '.join(c['prompt_overridden'])}" for c in cells)
    return [f"**Prompt differs from training** in {len(cells)} cell(s) ({named}); see each run's report.", ""]


def _pts(d: dict[str, Any], scale: float = 100.0, unit: str = " pts", digits: int = 1) -> str:
    lo, hi = d["ci95"]
    return f"{scale * d['difference']:+.{digits}f}{unit} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]"


def _baseline_lines(matrix: dict[str, Any]) -> list[str]:
    """The paired comparisons against the baseline (`compare_to_baseline`), one row per compared cell."""
    compared = [c for c in matrix["cells"] if c.get("vs_baseline")]
    if not compared:
        return []
    lines = [
        "",
        f"## Against the baseline `{matrix.get('baseline')}` (paired, same items)",
        "",
        "| model | task | n | Δ accuracy (lenient) | McNemar p | Δ strict accuracy | Δ main metric |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in compared:
        v = c["vs_baseline"]
        p = v["lenient"].get("mcnemar_p")
        mm = v.get("main_metric")
        main = (
            f"{mm['name']} {_pts(mm, 1.0, '', 3)}"
            if mm
            else "(accuracy)"
            if not c.get("main_metric")
            else "—"
        )
        lines.append(
            f"| {c['model']} | {c['task']} | {v['lenient']['n']} | {_pts(v['lenient'])} | "
            f"{'—' if p is None else f'{p:.2g}'} | {_pts(v['strict'])} | {main} |"
        )
    lines += [
        "",
        "Differences are the model's minus the baseline's on the items both scored, with a paired bootstrap 95% "
        "interval over items (10,000 resamples) and McNemar's exact test (one sample per item). Δ main metric: "
        "balanced accuracy recomputed per resample from each item's correctness and gold class; — where it "
        "cannot be recomputed that way.",
    ]
    return lines


def write_matrix_report(out: Path, matrix: dict[str, Any]) -> Path:
    rows, tasks, cells = _grid(matrix)
    s = matrix["settings"]
    lines = ["# Cross-task matrix", ""]
    lines += ["| model | path |", "|---|---|"]
    lines += [f"| {m['label']} | `{m['model']}` |" for m in matrix["models"]]
    lines += ["", "| task | data |", "|---|---|"]
    lines += [f"| {t['task']} | `{t['data']}` |" for t in matrix["tasks"]]
    lines += [
        "",
        f"Prompt modes: {', '.join(matrix['modes'])}; limit {s['limit']}; samples {s['samples']}; temperature "
        f"{s['temperature']}; max_new_tokens {s['max_new_tokens']}; seed {s['seed']}.",
        "",
        *_override_lines(matrix),
        "## Accuracy (95% CI)",
        "",
        f"![accuracy heatmap]({MATRIX_PNG})",
        "",
        "| model | " + " | ".join(tasks) + " |",
        "|---|" + "---:|" * len(tasks),
    ]
    lines += [f"| {r} | " + " | ".join(_acc(cells.get((r, t))) for t in tasks) + " |" for r in rows]
    names = {
        t: next(
            (c["main_metric"]["name"] for (_, tt), c in cells.items() if tt == t and c.get("main_metric")),
            None,
        )
        for t in tasks
    }
    lines += [
        "",
        "## Main metric (95% CI)",
        "",
        "| model | " + " | ".join(f"{t} ({names[t] or 'accuracy'})" for t in tasks) + " |",
        "|---|" + "---:|" * len(tasks),
    ]
    lines += [f"| {r} | " + " | ".join(_main(cells.get((r, t))) for t in tasks) + " |" for r in rows]
    lines += [
        "",
        "Accuracy intervals: Wilson (one sample per item) or a bootstrap over items; main-metric intervals: the "
        "task's own (bootstrap). *(accuracy)*: the task's main metric is its accuracy. Each cell is an `ehrmind "
        "eval` folder under `runs/` with its predictions, metrics and report.",
    ]
    lines += _baseline_lines(matrix)
    skipped = [c for c in matrix["cells"] if c.get("skipped")]
    if skipped:
        lines += ["", *[f"- n/a: {c['model']} × {c['task']} [{c['mode']}]: {c['skipped']}" for c in skipped]]
    path = out / MATRIX_MD
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def plot_matrix(matrix: dict[str, Any], path: Path) -> None:
    """Heatmaps (rows: models, columns: tasks) of accuracy and, where a task has one, its main metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, tasks, cells = _grid(matrix)
    acc = np.full((len(rows), len(tasks)), np.nan)
    main = np.full((len(rows), len(tasks)), np.nan)
    acc_text = [["n/a"] * len(tasks) for _ in rows]
    main_text = [["n/a"] * len(tasks) for _ in rows]
    for i, r in enumerate(rows):
        for j, t in enumerate(tasks):
            c = cells.get((r, t))
            if not c or c.get("skipped"):
                continue
            if c.get("accuracy") is not None:
                acc[i, j] = c["accuracy"]
                ci = c.get("ci95")
                acc_text[i][j] = f"{100 * c['accuracy']:.1f}%" + (
                    f"\n[{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]" if ci else ""
                )
            mm = c.get("main_metric")
            if mm:
                main[i, j] = mm["value"]
                ci = mm.get("ci95")
                main_text[i][j] = f"{mm['value']:.2f}" + (f"\n[{ci[0]:.2f}–{ci[1]:.2f}]" if ci else "")
            else:
                main_text[i][j] = "(accuracy)"
    panels = [("accuracy (95% CI)", acc, acc_text)]
    if not np.all(np.isnan(main)):
        names = sorted({c["main_metric"]["name"] for c in cells.values() if c.get("main_metric")})
        panels.append((f"main metric: {', '.join(names)} (95% CI)", main, main_text))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(1.6 * len(tasks) * len(panels) + 3, 0.7 * len(rows) + 1.8), squeeze=False
    )
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#DDDDDD")
    for ax, (title, values, text) in zip(axes[0], panels, strict=True):
        im = ax.imshow(np.ma.masked_invalid(values), vmin=0, vmax=1, cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_yticks(range(len(rows)), rows)
        for i in range(len(rows)):
            for j in range(len(tasks)):
                v = values[i, j]
                color = "black" if math.isnan(v) or v > 0.6 else "white"
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=8, color=color)
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
