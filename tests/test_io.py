"""Atomic writes and JSONL that survives a writer killed mid-line."""

from __future__ import annotations

import json

import pytest

from ehrmind.errors import DataError
from ehrmind.io import JsonlAppender, atomic_write_json, atomic_write_text, read_jsonl


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "out.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temp files left


def test_atomic_write_failure_keeps_old_content(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(TypeError):
        atomic_write_text(path, Boom())  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_read_jsonl_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "p.jsonl"
    with JsonlAppender(path) as sink:
        sink.write([{"id": "1"}, {"id": "2"}])
    with open(path, "a") as fh:
        fh.write('{"id": "3", "compl')  # killed mid-write
    with pytest.raises(DataError, match="row 3"):
        read_jsonl(path)
    assert read_jsonl(path, repair_tail=True) == [{"id": "1"}, {"id": "2"}]
    assert path.read_text() == '{"id": "1"}\n{"id": "2"}\n'


def test_read_jsonl_bad_middle_line_is_an_error_even_when_repairing(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1"}\nnot json\n{"id": "3"}\n')
    with pytest.raises(DataError, match="row 2"):
        read_jsonl(path, repair_tail=True)
