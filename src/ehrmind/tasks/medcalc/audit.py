"""Audit MedCalc-Bench labels against the calculator knowledge base.

Every row is recomputed from its own `Relevant Entities` with the registered calculator and judged against the
row's label with the verifier's rule (`MedCalcTask.judge`): decimals inside [Lower, Upper], integers
`round(x) == label`, dates and gestational ages equal. A row that cannot be recomputed (no calculator, a
missing entity, an unknown unit, a calculator that raises) is recorded with its cause and the audit goes on.

With a physician-corrected label file (junzeye/validate-medcalc-labels: `Unique ID` = v1.0 `Row Number`,
`Ground Truth Answer`, `Lower Limit`, `Upper Limit`), each row is also judged against its corrected label, and
agreement is reported on the rows whose v1.0 label the corrected file confirms (corrected label == v1.0 label).

Outputs (written atomically): `audit.csv` (one row per example), `summary.md` (tables and a plot
`agreement.png`), `summary.json` (the dict `run_audit` returns).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrmind.errors import DataError, excerpt
from ehrmind.io import atomic_write_json, atomic_write_text, output_file, output_folder, read_table
from ehrmind.tasks.medcalc.calculators import load_all
from ehrmind.tasks.medcalc.calculators.base import MissingInput
from ehrmind.tasks.medcalc.task import parse_gold
from ehrmind.types import Example

log = logging.getLogger(__name__)

AUDIT_COLUMNS = (
    "id",
    "calculator_id",
    "calculator",
    "category",
    "label",
    "recomputed",
    "agrees",
    "note",
    "detail",
)
CORRECTED_COLUMNS = ("corrected_label", "label_confirmed", "agrees_corrected")
CORRECTED_REQUIRED = ("Unique ID", "Ground Truth Answer", "Lower Limit", "Upper Limit")
NO_LABEL = {"n/a", "na", "nan", "none", ""}

NOTE_TOLERANCE = "label differs beyond tolerance"
NOTE_UNSCORABLE = "label cannot be scored"


# ---------------------------------------------------------------------------------------------- recompute
@dataclass
class Recomputed:
    value: Any = None
    """The calculator's value (number, MM/DD/YYYY, or (weeks, days)); None when the row was skipped."""
    note: str = ""
    """Why the row could not be recomputed ("no calculator for id N", "missing input X", "unit error …")."""
    detail: str = ""
    """The full exception message, if any."""
    explanation: str = ""


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _error_note(e: Exception, where: str) -> str:
    msg = str(e)
    if isinstance(e, ValueError) and "unit" in msg.lower():
        return f"unit error: {_short(msg, 120)}"
    return f"calculator error in {where} ({type(e).__name__})"


def recompute(example: Example, calculators: dict[int, Any] | None = None) -> Recomputed:
    """Recompute one row from its Relevant Entities; never raises for a calculator's own failure."""
    calcs = load_all() if calculators is None else calculators
    cid = example.metadata.get("calculator_id")
    calc = calcs.get(cid)
    if calc is None:
        return Recomputed(note=f"no calculator for id {cid}")
    entities = example.metadata.get("relevant_entities")
    if not isinstance(entities, dict):
        return Recomputed(note="relevant entities are not a dict", detail=_short(repr(entities)))
    try:
        inputs = calc.from_entities(entities)
    except MissingInput as e:
        name = e.args[0] if e.args else "?"
        return Recomputed(note=f"missing input {name}", detail=_short(str(e)))
    except Exception as e:  # a calculator bug must not stop the audit; its cause is recorded
        return Recomputed(note=_error_note(e, "from_entities"), detail=_short(f"{type(e).__name__}: {e}"))
    if "convention" in calc.inputs:  # v1.0's labels follow v1.0's date rules; synthetic rows say theirs
        inputs["convention"] = example.metadata.get("convention") or "medcalc"
    try:
        result = calc.compute(**inputs)
    except MissingInput as e:
        name = e.args[0] if e.args else "?"
        return Recomputed(note=f"missing input {name}", detail=_short(str(e)))
    except Exception as e:
        return Recomputed(note=_error_note(e, "compute"), detail=_short(f"{type(e).__name__}: {e}"))
    return Recomputed(value=result.value, explanation=result.explanation)


def judge_value(task: Any, example: Example, value: Any) -> tuple[bool | None, str]:
    """The verifier's verdict on a recomputed value: (correct, reason); None when the gold cannot be scored."""
    kind = example.target.get("output_type")
    if kind == "gestational_age" and isinstance(value, (tuple, list)):
        value = [int(value[0]), int(value[1])]
    elif kind == "date" and not isinstance(value, str):
        value = str(value)
    correct, _, reason = task.judge(example, value)
    return correct, reason


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"({value[0]} weeks, {value[1]} days)"
    return str(value)


def label_text(target: dict[str, Any]) -> str:
    if target.get("output_type") == "gestational_age" and target.get("value") is not None:
        return format_value(target["value"])
    return str(target.get("answer", target.get("value", "")))


# ---------------------------------------------------------------------------------------------- corrected
@dataclass(frozen=True)
class CorrectedLabel:
    row: int
    """1-based data row in the corrected file (for error messages)."""
    answer: str
    lower: str
    upper: str

    @property
    def missing(self) -> bool:
        return self.answer.strip().lower() in NO_LABEL


def _norm_id(raw: Any) -> str:
    s = "" if raw is None else str(raw).strip()
    return s[:-2] if s.endswith(".0") else s


def load_corrected(path: str | Path) -> dict[str, CorrectedLabel]:
    """Read a corrected-label file (CSV/Parquet/JSONL) into {v1.0 Row Number: label}.

    A missing file, a missing column, an empty or duplicate `Unique ID` or an empty `Ground Truth Answer`
    raises DataError naming the file, row and field. `N/A` answers (no corrected label) are kept as such."""
    path = Path(path)
    out: dict[str, CorrectedLabel] = {}
    for row_no, rec in read_table(path):
        missing = [c for c in CORRECTED_REQUIRED if c not in rec]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(missing)} (a corrected-label file needs "
                f"{', '.join(CORRECTED_REQUIRED)})",
                file=path,
                row=row_no,
                field=missing[0],
            )
        uid = _norm_id(rec.get("Unique ID"))
        if not uid:
            raise DataError("empty", file=path, row=row_no, field="Unique ID")
        if uid in out:
            raise DataError(f"duplicate Unique ID {uid}", file=path, row=row_no, field="Unique ID")
        answer = "" if rec.get("Ground Truth Answer") is None else str(rec["Ground Truth Answer"]).strip()
        if not answer:
            raise DataError(
                "empty (write N/A for a row without a label)",
                file=path,
                row=row_no,
                field="Ground Truth Answer",
            )
        out[uid] = CorrectedLabel(
            row=row_no,
            answer=answer,
            lower="" if rec.get("Lower Limit") is None else str(rec["Lower Limit"]).strip(),
            upper="" if rec.get("Upper Limit") is None else str(rec["Upper Limit"]).strip(),
        )
    return out


def corrected_target(label: CorrectedLabel, output_type: str, path: str | Path) -> dict[str, Any]:
    """The typed gold of a corrected label for a row of `output_type`; DataError if it cannot be read.

    The corrected file writes a gestational age as a total number of days (e.g. 99 = 14 weeks 1 day)."""
    answer = label.answer
    if output_type == "gestational_age":
        try:
            days = float(answer)
        except ValueError:
            days = None
        if days is not None:
            if not days.is_integer() or days < 0:
                raise DataError(
                    f"expected a whole number of days or ('W weeks', 'D days'), got {answer!r}",
                    file=path,
                    row=label.row,
                    field="Ground Truth Answer",
                )
            d = int(days)
            return {"output_type": "gestational_age", "answer": answer, "value": [d // 7, d % 7]}
    try:
        return parse_gold(output_type, answer, label.lower, label.upper)
    except ValueError as e:
        fld, _, msg = str(e).partition(": ")
        raise DataError(
            f"{msg} (got {excerpt(answer)})", file=path, row=label.row, field=fld or None
        ) from None


def _decimals(text: str) -> int:
    s = str(text).strip().lower()
    if "e" in s or "." not in s:
        return 0
    return len(s.split(".", 1)[1])


def same_label(corrected: dict[str, Any], original: dict[str, Any]) -> bool:
    """Does the corrected label confirm the v1.0 label? Dates as strings, gestational ages as (weeks, days),
    numbers numerically up to the corrected file's rounding: the corrected file prints at most 2 decimals
    (25.24 for v1.0's 25.238), so numbers are equal when they differ by at most half a unit of the
    corrected label's last decimal place, and never by more than 0.005."""
    kind = corrected.get("output_type")
    if kind != original.get("output_type"):
        return False
    if kind == "date":
        return corrected["answer"] == original["answer"]
    if kind == "gestational_age":
        return list(corrected["value"]) == list(original["value"])
    a, b = float(corrected["value"]), float(original["value"])
    places = max(_decimals(corrected.get("answer", "")), 2)
    return abs(a - b) <= 0.5 * 10.0**-places + 1e-9 * max(1.0, abs(a))


# ---------------------------------------------------------------------------------------------- the audit
@dataclass
class _Tally:
    n: int = 0
    agree: int = 0

    def add(self, ok: bool | None) -> None:
        self.n += 1
        self.agree += bool(ok)

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "agree": self.agree, "agreement": (self.agree / self.n) if self.n else None}


@dataclass
class _CalcStats:
    calculator_id: Any
    name: str
    all: _Tally = field(default_factory=_Tally)
    confirmed: _Tally = field(default_factory=_Tally)
    corrected: _Tally = field(default_factory=_Tally)


def _pct(t: dict[str, Any]) -> str:
    return "–" if not t["n"] else f"{100 * t['agreement']:.1f}%"


def _sort_key(cid: Any) -> tuple[int, Any]:
    return (0, cid) if isinstance(cid, int) else (1, str(cid))


def audit_rows(
    examples: list[Example],
    task: Any,
    corrected: dict[str, CorrectedLabel] | None = None,
    corrected_path: str | Path = "",
) -> list[dict[str, Any]]:
    """One audit record per example (see AUDIT_COLUMNS / CORRECTED_COLUMNS)."""
    calcs = load_all()
    rows: list[dict[str, Any]] = []
    for ex in examples:
        rec = recompute(ex, calcs)
        cid = ex.metadata.get("calculator_id")
        row: dict[str, Any] = {
            "id": ex.id,
            "calculator_id": cid,
            "calculator": ex.metadata.get("calculator_name") or getattr(calcs.get(cid), "name", ""),
            "category": ex.metadata.get("category", ""),
            "label": label_text(ex.target),
            "recomputed": format_value(rec.value),
            "agrees": None,
            "note": rec.note,
            "detail": rec.detail,
        }
        if rec.value is not None:
            ok, reason = judge_value(task, ex, rec.value)
            row["agrees"] = ok
            if ok is None:
                row["note"], row["detail"] = NOTE_UNSCORABLE, reason
            elif not ok:
                row["note"], row["detail"] = NOTE_TOLERANCE, reason
        if corrected is not None:
            _add_corrected(row, ex, rec, task, corrected, corrected_path)
        rows.append(row)
    return rows


def _add_corrected(
    row: dict[str, Any],
    ex: Example,
    rec: Recomputed,
    task: Any,
    corrected: dict[str, CorrectedLabel],
    path: str | Path,
) -> None:
    row.update({"corrected_label": "", "label_confirmed": None, "agrees_corrected": None})
    label = corrected.get(ex.id)
    if label is None:
        if row["agrees"] is False:
            row["note"] = f"{NOTE_TOLERANCE}; row not in corrected file"
        return
    if label.missing:
        row["corrected_label"] = label.answer
        if row["agrees"] is False:
            row["note"] = f"{NOTE_TOLERANCE}; corrected file has no label ({label.answer})"
        return
    target = corrected_target(label, ex.target.get("output_type", ""), path)
    row["corrected_label"] = label_text(target)
    row["label_confirmed"] = same_label(target, ex.target)
    if rec.value is None:
        return
    cex = Example(id=ex.id, task=ex.task, input=ex.input, target=target, metadata=ex.metadata)
    ok_c, _ = judge_value(task, cex, rec.value)
    row["agrees_corrected"] = ok_c
    if row["agrees"] is False:
        row["note"] = (
            "corrected label agrees with recomputation"
            if ok_c
            else f"{NOTE_TOLERANCE}; corrected label also differs"
        )
    elif row["agrees"] is True and ok_c is False:
        row["note"] = "agrees with v1.0 label but not with the corrected label"


def _group(ids: dict[str, list[str]], calcs: dict[str, Counter]) -> dict[str, Any]:
    """Causes, most frequent first: count, up to 5 example ids, and the calculators involved (id -> rows)."""
    return {
        k: {
            "count": len(v),
            "example_ids": v[:5],
            "calculators": {
                str(c): n for c, n in sorted(calcs[k].items(), key=lambda cn: (-cn[1], _sort_key(cn[0])))
            },
        }
        for k, v in sorted(ids.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    }


def summarize_rows(rows: list[dict[str, Any]], with_corrected: bool) -> dict[str, Any]:
    per: dict[Any, _CalcStats] = {}
    overall, confirmed, vs_corrected = _Tally(), _Tally(), _Tally()
    causes: dict[str, list[str]] = defaultdict(list)
    corrected_causes: dict[str, list[str]] = defaultdict(list)
    cause_calcs: dict[str, Counter] = defaultdict(Counter)
    corrected_cause_calcs: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        st = per.setdefault(r["calculator_id"], _CalcStats(r["calculator_id"], str(r["calculator"])))
        ok = r["agrees"] is True
        st.all.add(ok)
        overall.add(ok)
        if not ok:
            causes[r["note"] or "unknown"].append(str(r["id"]))
            cause_calcs[r["note"] or "unknown"][r["calculator_id"]] += 1
        if with_corrected:
            if r.get("label_confirmed") is True:
                st.confirmed.add(ok)
                confirmed.add(ok)
            if r.get("label_confirmed") is not None:  # the row has a usable corrected label
                okc = r.get("agrees_corrected") is True
                st.corrected.add(okc)
                vs_corrected.add(okc)
                if not okc:
                    key = r["note"] or "recomputation differs from corrected label"
                    corrected_causes[key].append(str(r["id"]))
                    corrected_cause_calcs[key][r["calculator_id"]] += 1
    per_calc = []
    for cid in sorted(per, key=_sort_key):
        st = per[cid]
        item = {"calculator_id": cid, "calculator": st.name, **st.all.as_dict()}
        if with_corrected:
            item["confirmed"] = st.confirmed.as_dict()
            item["corrected"] = st.corrected.as_dict()
        per_calc.append(item)
    summary: dict[str, Any] = {
        "rows": len(rows),
        "recomputed": sum(1 for r in rows if r["recomputed"] != ""),
        "overall": overall.as_dict(),
        "per_calculator": per_calc,
        "causes": _group(causes, cause_calcs),
    }
    if with_corrected:
        summary["confirmed"] = confirmed.as_dict()
        summary["corrected"] = vs_corrected.as_dict()
        summary["corrected_causes"] = _group(corrected_causes, corrected_cause_calcs)
    return summary


def _csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _plot(summary: dict[str, Any], path: Path, with_corrected: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = summary["per_calculator"]
    labels = [f"{p['calculator_id']} {str(p['calculator'])[:38]}" for p in per]
    allp = [100 * (p["agreement"] or 0) for p in per]
    height = max(3.0, 0.28 * len(per) + 1.2)
    fig, ax = plt.subplots(figsize=(10, height))
    y = list(range(len(per)))
    if with_corrected:
        # a calculator with no confirmed row gets no green bar (not a 0% one)
        conf = [100 * p["confirmed"]["agreement"] if p["confirmed"]["n"] else float("nan") for p in per]
        ax.barh([v + 0.2 for v in y], allp, height=0.4, label="all rows", color="#4C72B0")
        ax.barh([v - 0.2 for v in y], conf, height=0.4, label="confirmed labels", color="#55A868")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    else:
        ax.barh(y, allp, height=0.7, color="#4C72B0")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(len(per) - 0.5, -0.5)  # first calculator on top, no empty margins
    ax.set_xlim(0, 100)
    ax.set_xlabel("agreement of recomputation with label (%)")
    ax.set_title("MedCalc label audit: agreement per calculator")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    output_file(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)  # atomic: the plot is either the old one or the new one


def _markdown(summary: dict[str, Any], data: str, corrected: str | None, plot_name: str) -> str:
    o = summary["overall"]
    wc = corrected is not None
    lines = [
        "# MedCalc label audit",
        "",
        f"- data: `{data}`",
        f"- rows: {summary['rows']} (recomputed: {summary['recomputed']}, "
        f"skipped: {summary['rows'] - summary['recomputed']})",
        f"- overall agreement with the labels: **{o['agree']}/{o['n']} = {_pct(o)}**",
    ]
    if wc:
        c, k = summary["confirmed"], summary["corrected"]
        lines += [
            f"- corrected labels: `{corrected}`",
            f"- agreement on rows whose label the corrected file confirms: **{c['agree']}/{c['n']} = {_pct(c)}**",
            f"- agreement with the corrected labels (rows with a corrected label): "
            f"**{k['agree']}/{k['n']} = {_pct(k)}**",
        ]
    lines += [
        "",
        "A row agrees when its calculator, recomputing from the row's own Relevant Entities, meets the row's "
        "label under the verifier's rule (decimals within [Lower, Upper], integers round(x) == label, dates "
        "and gestational ages equal). Skipped rows (no calculator, missing input, unit error) count as "
        "disagreements.",
        "",
        "## Agreement per calculator",
        "",
    ]
    head = "| id | calculator | n | agree | % |"
    sep = "|---:|---|---:|---:|---:|"
    if wc:
        head += " confirmed n | agree | % | vs corrected n | agree | % |"
        sep += "---:|---:|---:|---:|---:|---:|"
    lines += [head, sep]
    for p in summary["per_calculator"]:
        line = f"| {p['calculator_id']} | {p['calculator']} | {p['n']} | {p['agree']} | {_pct(p)} |"
        if wc:
            c, k = p["confirmed"], p["corrected"]
            line += f" {c['n']} | {c['agree']} | {_pct(c)} | {k['n']} | {k['agree']} | {_pct(k)} |"
        lines.append(line)
    lines += ["", f"![Agreement per calculator]({plot_name})", "", "## Disagreements by cause", ""]
    lines += _cause_table(summary["causes"])
    if wc:
        lines += ["", "## Disagreements with the corrected labels, by cause", ""]
        lines += _cause_table(summary["corrected_causes"])
    lines += [
        "",
        "Columns of `audit.csv`: id (v1.0 Row Number), calculator_id, calculator, category, label (v1.0 "
        "Ground Truth Answer), recomputed (the knowledge base's value), agrees (verifier's rule), note (the "
        "cause of a disagreement or skip), detail (exception or verdict text)"
        + (", corrected_label, label_confirmed (corrected == v1.0), agrees_corrected." if wc else "."),
        "",
    ]
    return "\n".join(lines)


def _cause_table(causes: dict[str, Any]) -> list[str]:
    if not causes:
        return ["None."]
    out = ["| cause | rows | example ids | calculators (id: rows) |", "|---|---:|---|---|"]
    for cause, info in causes.items():
        calcs = ", ".join(f"{c}: {n}" for c, n in info.get("calculators", {}).items())
        out.append(
            f"| {cause.replace('|', '/')} | {info['count']} | {', '.join(info['example_ids'])} | {calcs} |"
        )
    return out


def run_audit(data: str | Path, out_dir: str | Path, corrected: str | Path | None = None) -> dict[str, Any]:
    """Recompute every MedCalc row with its calculator and judge it against the label (and the corrected
    label, if a file is given). Writes OUT/audit.csv, OUT/summary.md, OUT/agreement.png, OUT/summary.json;
    returns the summary dict. Bad corrected-label files raise DataError naming file, row and field."""
    from ehrmind.registry import get_task

    task = get_task("medcalc")
    examples = task.load(data)
    corrected_labels = load_corrected(corrected) if corrected is not None else None
    if corrected_labels is not None:
        known = {ex.id for ex in examples}
        extra = [k for k in corrected_labels if k not in known]
        if extra:
            log.warning(
                "%d corrected label(s) match no row of %s (e.g. Unique ID %s)", len(extra), data, extra[0]
            )
    rows = audit_rows(examples, task, corrected_labels, corrected or "")
    with_c = corrected_labels is not None
    summary = summarize_rows(rows, with_c)
    out = output_folder(out_dir)
    columns = AUDIT_COLUMNS + (CORRECTED_COLUMNS if with_c else ())
    atomic_write_text(out / "audit.csv", _csv_text(rows, columns))
    _plot(summary, out / "agreement.png", with_c)
    atomic_write_text(
        out / "summary.md", _markdown(summary, str(data), str(corrected) if with_c else None, "agreement.png")
    )
    summary["files"] = {
        "audit_csv": str(out / "audit.csv"),
        "summary_md": str(out / "summary.md"),
        "plot": str(out / "agreement.png"),
        "summary_json": str(out / "summary.json"),
    }
    summary["data"] = str(data)
    summary["corrected_file"] = str(corrected) if with_c else None
    atomic_write_json(out / "summary.json", summary)
    o = summary["overall"]
    log.info("audit: %d/%d rows agree (%s); wrote %s", o["agree"], o["n"], _pct(o), out)
    return summary
