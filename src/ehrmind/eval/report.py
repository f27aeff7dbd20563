"""Markdown report and plots for an evaluation folder (people would rather look than read)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_write_text

PLOT = "accuracy_by_category.png"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _table(blocks: dict[str, dict[str, Any]], label: str, verdicts: Sequence[str] = ()) -> list[str]:
    head = f"| {label} | n | accuracy | 95% CI | strict accuracy | format errors |"
    rule = "|---|---:|---:|---:|---:|---:|"
    for v in verdicts:
        head += f" {v} accuracy | {v} 95% CI |"
        rule += "---:|---:|"
    lines = [head, rule]
    for name, b in blocks.items():
        line = (
            f"| {name or '(none)'} | {b['n']} | {_pct(b['accuracy'])} | {_ci(b['ci95'])} | "
            f"{_pct(b['strict_accuracy'])} | {_pct(b['format_error_rate'])} |"
        )
        for v in verdicts:
            line += f" {_pct(b.get(f'{v}_accuracy'))} | {_ci(b.get(f'{v}_accuracy_ci95'))} |"
        lines.append(line)
    return lines


EXAMPLE_CHARS = 300
"""How much of a completion (its end, where the answer is) a disagreement example shows."""


def _fenced(text: str) -> list[str]:
    """A code block whose fence is longer than any backtick run in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


def disagreement_lines(rows: Sequence[dict[str, Any]], verdict: str, limit: int = 3) -> list[str]:
    """How many rows `<verdict>_correct` and `correct` judge differently, with up to `limit` examples (the
    end of the completion only: never the prompt, so no patient note)."""
    key = f"{verdict}_correct"
    both = [r for r in rows if r.get(key) is not None and r.get("correct") is not None]
    differ = [r for r in both if bool(r[key]) != bool(r["correct"])]
    lines = [
        f"## `{verdict}` verdict beside `correct`",
        "",
        f"{len(differ)} of {len(both)} rows are judged differently (`correct` vs `{key}`).",
    ]
    for r in differ[:limit]:
        text = str(r.get("completion") or "")
        shown = text if len(text) <= EXAMPLE_CHARS else "…" + text[-EXAMPLE_CHARS:]
        lines += [
            "",
            f"- id `{r.get('id')}` sample {r.get('sample', 0)}: correct={r['correct']}, {key}={r[key]}; "
            f"parsed `{r.get('parsed')}`, {verdict}_parsed `{r.get(f'{verdict}_parsed')}` "
            f"(completion: {len(text)} characters{', last ' + str(EXAMPLE_CHARS) if shown != text else ''})",
            "",
            *_fenced(shown),
        ]
    return lines


def plot_accuracy(blocks: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(blocks)
    names = [f"{k} (n={blocks[k].get('n', '?')})" for k in keys]  # every bar says how many rows it holds
    acc = [100 * (blocks[k]["accuracy"] or 0.0) for k in keys]
    lo = [
        a - 100 * (blocks[k]["ci95"] or [0, 0])[0] if blocks[k]["ci95"] else 0
        for a, k in zip(acc, keys, strict=True)
    ]
    hi = [
        100 * (blocks[k]["ci95"] or [0, 0])[1] - a if blocks[k]["ci95"] else 0
        for a, k in zip(acc, keys, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
    ax.barh(names, acc, xerr=[lo, hi], color="#4C72B0", capsize=3)
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%) with 95% CI")
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


RUN_FACTS = (
    "task",
    "task_version",
    "data",
    "data_sha256",
    "model",
    "predictions",
    "prompt_mode",
    "prefill",
    "task_options",
    "samples",
    "temperature",
    "top_p",
    "max_new_tokens",
    "seed",
    "batch_size",
    "ehrmind_version",
    "finished",
)
"""The run-record keys a report's head shows, in order (those a run has)."""


def facts_rows(run: dict[str, Any], keys: Sequence[str]) -> list[str]:
    """Markdown table rows `| key | `value` |` for the `keys` a run record has (newlines shown as \\n)."""
    return [
        f"| {key} | `{str(run[key]).replace(chr(10), chr(92) + 'n')}` |"
        for key in keys
        if run.get(key) not in (None, "")
    ]


def write_report(
    out: Path,
    metrics: dict[str, Any],
    group_fields: Sequence[str],
    extra: Sequence[str] = (),
    verdicts: Sequence[str] = (),
    rows: Sequence[dict[str, Any]] = (),
) -> Path:
    """report.md (and the plot); `verdicts` (the names of the task's verdict analyses) add columns beside accuracy and,
    with the prediction `rows`, a section on the rows where they disagree with `correct`."""
    run = metrics.get("run", {})
    lines = [f"# Evaluation: {run.get('task', '?')} — {run.get('model', run.get('predictions', '?'))}", ""]
    lines += ["| | |", "|---|---|"]
    lines += facts_rows(run, RUN_FACTS)
    env = run.get("environment")
    if isinstance(env, dict):
        packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
        backend = ", ".join(
            f"{k} {env[k]}" for k in ("dtype", "device", "model_revision") if env.get(k) not in (None, "")
        )
        lines.append(
            f"| environment | `python {env.get('python')}; {packages}{'; ' + backend if backend else ''}` |"
        )
    from ehrmind.trained import report_lines

    trained = report_lines(run.get("trained_prompt"))
    lines += ["", *trained] if trained else []
    lines += ["", "## Overall", ""]
    lines += _table({"all": metrics}, "", verdicts)
    lines += [
        "",
        "*accuracy*: the task's verifier (`Task.verify`: its own answer extraction, then the benchmark's "
        "correctness rule); *strict accuracy*: "
        "correct and in the output format (what RL rewards); intervals are Wilson (one sample per item) "
        "or a bootstrap over items (several samples).",
    ]
    if extra:
        lines += ["", *extra]
    for v in verdicts:
        if rows:
            lines += ["", *disagreement_lines(rows, v)]
    first = f"by_{group_fields[0]}" if group_fields else None
    if first and metrics.get(first):
        model = Path(str(run.get("model") or run.get("predictions") or "?")).name
        data = Path(str(run.get("data") or "?")).name
        title = (
            f"accuracy by {group_fields[0]}: {model} on {data} ({run.get('task', '?')}), n={metrics.get('n')}"
        )
        plot_accuracy(metrics[first], out / PLOT, title)
        lines += ["", f"## By {group_fields[0]}", "", f"![accuracy by {group_fields[0]}]({PLOT})", ""]
        lines += _table(metrics[first], group_fields[0], verdicts)
    for field in group_fields[1:]:
        blocks = metrics.get(f"by_{field}")
        if blocks:
            lines += ["", f"## By {field.replace('_', ' ')}", ""]
            lines += _table(blocks, field.replace("_", " "), verdicts)
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
