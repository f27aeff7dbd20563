"""The training report (`training.md`, `training.png` in the output folder of `ehrmind sft` / `ehrmind rl`).

Read from TRL's own log history, so it shows what TRL measured and nothing recomputed: for GRPO the reward
and each reward component, the KL to the reference model (logged when `beta` > 0), completion length, the
share of completions cut at the length limit, the share of PPO ratios clipped, and the share of groups whose
rewards all tie (`frac_reward_zero_std`: those groups give no learning signal); for SFT the loss, token
accuracy and entropy. Each plot and table says the stage, model, data and number of steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_path, atomic_write_text

PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss",)),
    ("reward (mean over completions)", ("reward", "rewards/*/mean")),
    ("groups with zero reward variance (no signal)", ("frac_reward_zero_std",)),
    ("KL to the reference model", ("kl",)),
    ("completion length (tokens)", ("completions/mean_length", "completions/max_length")),
    ("clipped", ("completions/clipped_ratio", "clip_ratio/region_mean")),
    ("token accuracy (SFT)", ("mean_token_accuracy",)),
    ("entropy", ("entropy",)),
)
"""(panel title, log keys; `*` matches any reward function name). Panels without data are left out."""
LABELS = {
    "completions/clipped_ratio": "completions cut at max length",
    "clip_ratio/region_mean": "PPO ratios clipped",
    "completions/mean_length": "mean",
    "completions/max_length": "max",
    "reward": "total",
}


def series(history: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(step, value) per numeric key of the per-step log entries (the final summary entry is skipped)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for h in history:
        if "step" not in h or "train_runtime" in h:
            continue
        for k, v in h.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.setdefault(k, []).append((float(h["step"]), float(v)))
    return out


def _keys(pattern: str, available: dict[str, Any]) -> list[str]:
    if "*" not in pattern:
        return [pattern] if pattern in available else []
    head, tail = pattern.split("*", 1)
    return sorted(k for k in available if k.startswith(head) and k.endswith(tail))


def panels(data: dict[str, list[tuple[float, float]]]) -> list[tuple[str, list[str]]]:
    out = []
    for title, patterns in PANELS:
        keys = [k for p in patterns for k in _keys(p, data)]
        if keys:
            out.append((title, keys))
    return out


def _label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if key.startswith("rewards/") and key.endswith("/mean"):
        return key[len("rewards/") : -len("/mean")]
    return key


def write_training_report(
    out: Path, history: Sequence[dict[str, Any]], *, stage: str, model: str, data: str
) -> Path | None:
    """training.md and training.png from the log history; None when nothing per step was logged."""
    data_series = series(history)
    chosen = panels(data_series)
    if not chosen:
        return None
    steps = int(max(s for v in data_series.values() for s, _ in v))
    title = f"{stage}: {Path(model).name} on {Path(data).name}, {steps} steps"
    _plot(out / "training.png", data_series, chosen, title)
    lines = [
        f"# Training: {stage}",
        "",
        f"Model `{model}`, data `{data}`, {steps} steps; from TRL's log history (`log_history.json`).",
        "",
        "![training curves](training.png)",
        "",
        "| metric | first | last | min | max | logged steps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for _, keys in chosen:
        for k in keys:
            values = [v for _, v in data_series[k]]
            lines.append(
                f"| {k} | {values[0]:.4g} | {values[-1]:.4g} | {min(values):.4g} | {max(values):.4g} | {len(values)} |"
            )
    zero = data_series.get("frac_reward_zero_std")
    if zero:
        mean = sum(v for _, v in zero) / len(zero)
        lines += [
            "",
            f"On average **{100 * mean:.0f}%** of GRPO groups had rewards that all tie (`frac_reward_zero_std`): "
            "those prompts teach nothing that step. Near 100% the run cannot learn — more completions per "
            "prompt, a higher temperature or harder/easier prompts give the groups variance.",
        ]
    path = out / "training.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _plot(
    path: Path, data: dict[str, list[tuple[float, float]]], chosen: list[tuple[str, list[str]]], title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(chosen) > 1 else 1
    rows = (len(chosen) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 2.6 * rows), squeeze=False)
    for ax, (panel, keys) in zip(axes.flat, chosen, strict=False):
        for k in keys:
            xs, ys = zip(*data[k], strict=True)
            ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=_label(k))
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
