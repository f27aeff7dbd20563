"""EHRSHOT-style disease prediction over MEDS / EHRSHOT timelines: readers, labelers, serializer, verifier.

Public API:
- `EhrshotTask` (registered as `ehrshot`): load / render / verify / metrics.
- `iter_timelines`, `resolve_source`, `read_label_file`: stream subjects from MEDS Parquet, EHRSHOT CSV,
  or the MIMIC-IV demo file.
- `get_labeler`, `default_config`, `LABELER_NAMES`: EHRSHOT's labelers with configurable code sets.
- `TimelineSerializer`, `SerializerConfig`: timeline → text within a token budget.
- `ExampleBuilder`, `build_snapshot`: the `ehrmind data` pipeline.
"""

from ehrmind.tasks.ehrshot.build import ExampleBuilder, build_examples, build_snapshot
from ehrmind.tasks.ehrshot.codes import CodeSet, Vocabulary, canonical_code
from ehrmind.tasks.ehrshot.labelers import LABELER_NAMES, LabelResult, default_config, get_labeler
from ehrmind.tasks.ehrshot.readers import Event, Timeline, iter_timelines, read_label_file, resolve_source
from ehrmind.tasks.ehrshot.serialize import SerializerConfig, TimelineSerializer
from ehrmind.tasks.ehrshot.task import EhrshotTask, parse_prediction, parse_probability

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
