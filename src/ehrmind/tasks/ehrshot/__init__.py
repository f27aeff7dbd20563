"""EHRSHOT-style disease prediction over MEDS / EHRSHOT timelines: readers, labelers, serializer, verifier.

Public API:
- `EhrshotTask` (registered as `ehrshot`): load / render / verify / metrics.
- `iter_timelines`, `resolve_source`, `read_label_file`: stream subjects from MEDS Parquet, EHRSHOT CSV,
  or the MIMIC-IV demo file.
- `get_labeler`, `default_config`, `LABELER_NAMES`: EHRSHOT's labelers with configurable code sets.
- `TimelineSerializer`, `SerializerConfig`: timeline → text within a token budget.
- `ExampleBuilder`, `build_snapshot`: the `ehrmind data` pipeline.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "ExampleBuilder": "build", "build_examples": "build", "build_snapshot": "build",
    "CodeSet": "codes", "Vocabulary": "codes", "canonical_code": "codes",
    "LABELER_NAMES": "labelers", "LabelResult": "labelers", "default_config": "labelers", "get_labeler": "labelers",
    "Event": "readers", "Timeline": "readers", "iter_timelines": "readers", "read_label_file": "readers",
    "resolve_source": "readers",
    "SerializerConfig": "serialize", "TimelineSerializer": "serialize",
    "EhrshotTask": "task", "parse_prediction": "task", "parse_probability": "task",
}  # fmt: skip
"""Where each public name lives: imported on first use, so a light module of this family (its command) does
not load the readers, labelers and serializer with it."""


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "LABELER_NAMES",
    "CodeSet",
    "EhrshotTask",
    "Event",
    "ExampleBuilder",
    "LabelResult",
    "SerializerConfig",
    "Timeline",
    "TimelineSerializer",
    "Vocabulary",
    "build_examples",
    "build_snapshot",
    "canonical_code",
    "default_config",
    "get_labeler",
    "iter_timelines",
    "parse_prediction",
    "parse_probability",
    "read_label_file",
    "resolve_source",
]
