"""Atomic writes and JSONL that survives a writer killed mid-line."""

from __future__ import annotations

import json
import re

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


# ---------------------------------------------------------------- bounded YAML (issue #16, cause 10)


def _alias_bomb(path, levels: int = 8):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ", ".join(["*" + prev] * 9) + "]")
        prev = name
    lines += ["task: medcalc", f"trl: {{learning_rate: *{prev}}}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    """328 bytes that expand to 9^8 values: before, `ehrmind sft --recipe` took 57 s and 7 GB to fail."""
    from ehrmind.errors import ConfigError
    from ehrmind.io import read_yaml
    from ehrmind.train.recipe import load_recipe

    bomb = _alias_bomb(tmp_path / "bomb.yaml")
    with pytest.raises(ConfigError, match="aliases expand to more than 100,000 values") as err:
        load_recipe(bomb, stage="sft")
    assert str(bomb) in str(err.value) and len(str(err.value)) < 300
    many = tmp_path / "many.yaml"
    many.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    with pytest.raises(ConfigError, match="more than 100 YAML aliases"):
        read_yaml(many)
    shared = tmp_path / "shared.yaml"  # ordinary aliases still work
    shared.write_text("base: &b {lr: 1}\nsft: {trl: *b}\nrl: {trl: *b}\n")
    assert read_yaml(shared)["rl"] == {"trl": {"lr": 1}}


def test_yaml_errors_name_the_file_not_its_content(tmp_path):
    from ehrmind.errors import ConfigError
    from ehrmind.io import MAX_YAML_BYTES, parse_yaml, read_yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text("task: medcalc\ntrl: {lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line \d+"):
        read_yaml(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("note: 'Patientin M\xfcller'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        read_yaml(latin)
    assert "ller" not in str(err.value)
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "a" * (MAX_YAML_BYTES + 1))
    with pytest.raises(ConfigError, match="at most 1,000,000"):
        read_yaml(big)
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ConfigError, match="--set a: (nested too deeply|not valid YAML)"):
        parse_yaml(deep, "--set a")
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml", "recipe")


@pytest.mark.parametrize(
    ("content", "message", "row"),
    [
        # issue #16, cause 9: each of these was a Python traceback (UnicodeDecodeError, RecursionError)
        pytest.param(b'{"id": 1}\n\xff\xfe{"id": 2}\n', "not UTF-8 text (byte 0xff)", 2, id="not-utf8"),
        pytest.param(b'{"id": 1}\n' + b"[" * 100_000 + b"\n", "nested too deeply", 2, id="deep-nesting"),
    ],
)
def test_read_jsonl_bad_bytes_name_the_line(tmp_path, content, message, row):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as e:
        read_jsonl(path)
    assert e.value.row == row and str(path) in str(e.value)


def test_read_jsonl_on_a_folder_is_a_named_error(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a JSONL file"):
        read_jsonl(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"[" * 100_000, "nested too deeply", id="deep-nesting"),
        pytest.param(b'[{"note": "caf\xe9"}]', "not UTF-8 text (byte 0xe9)", id="latin-1"),
    ],
)
def test_read_table_json_bad_bytes_are_named(tmp_path, content, message):
    from ehrmind.io import read_table

    path = tmp_path / "d.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        list(read_table(path))
