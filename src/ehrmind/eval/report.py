"""Markdown report and plots for an evaluation folder (people would rather look than read)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_write_text

PLOT = "accuracy_by_category.png"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _table(blocks: dict[str, dict[str, Any]], label: str) -> list[str]:
    lines = [
        f"| {label} | n | accuracy | 95% CI | strict accuracy | format errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, b in blocks.items():
        lines.append(
            f"| {name or '(none)'} | {b['n']} | {_pct(b['accuracy'])} | {_ci(b['ci95'])} | "
            f"{_pct(b['strict_accuracy'])} | {_pct(b['format_error_rate'])} |"
        )
    return lines


def plot_accuracy(blocks: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(blocks)
    acc = [100 * (blocks[n]["accuracy"] or 0.0) for n in names]
    lo = [
        a - 100 * (blocks[n]["ci95"] or [0, 0])[0] if blocks[n]["ci95"] else 0
        for a, n in zip(acc, names, strict=True)
    ]
    hi = [
        100 * (blocks[n]["ci95"] or [0, 0])[1] - a if blocks[n]["ci95"] else 0
        for a, n in zip(acc, names, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
    ax.barh(names, acc, xerr=[lo, hi], color="#4C72B0", capsize=3)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%) with 95% CI")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_report(
    out: Path, metrics: dict[str, Any], group_fields: Sequence[str], extra: Sequence[str] = ()
) -> Path:
    run = metrics.get("run", {})
    lines = [f"# Evaluation: {run.get('task', '?')} — {run.get('model', run.get('predictions', '?'))}", ""]
    lines += ["| | |", "|---|---|"]
    for key in (
        "task",
        "task_version",
        "data",
        "data_sha256",
        "model",
        "predictions",
        "prompt_mode",
        "prefill",
        "samples",
        "temperature",
        "top_p",
        "max_new_tokens",
        "seed",
        "ehrmind_version",
        "finished",
    ):
        if key in run and run[key] not in (None, ""):
            value = str(run[key]).replace("\n", "\\n")
            lines.append(f"| {key} | `{value}` |")
    lines += ["", "## Overall", ""]
    lines += _table({"all": metrics}, "")
    lines += [
        "",
        "*accuracy*: the benchmark's correctness rule applied to the extracted answer; *strict accuracy*: "
        "correct and in the output format (what RL rewards); intervals are Wilson (one sample per item) "
        "or a bootstrap over items (several samples).",
    ]
    if extra:
        lines += ["", *extra]
    first = f"by_{group_fields[0]}" if group_fields else None
    if first and metrics.get(first):
        plot_accuracy(metrics[first], out / PLOT, f"accuracy by {group_fields[0]}")
        lines += ["", f"## By {group_fields[0]}", "", f"![accuracy by {group_fields[0]}]({PLOT})", ""]
        lines += _table(metrics[first], group_fields[0])
    for field in group_fields[1:]:
        blocks = metrics.get(f"by_{field}")
        if blocks:
            lines += ["", f"## By {field.replace('_', ' ')}", ""]
            lines += _table(blocks, field.replace("_", " "))
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
