"""Issue #30, part 3: `eval` on the `hf` backend batches prompts of like length together (shortest first) and
seeds each row alone, so what a row generates does not depend on its batch, the batch size or the order
the rows come in; a resumed run asks only for the rows it lacks and writes the same file."""

from __future__ import annotations

import json
import random

import pytest

from ehrmind import get_task
from ehrmind.eval.runner import PREDICTIONS, _generate_per_row, example_row_seed, run_eval, run_info
from ehrmind.generate.hf import GenerationSettings, HFGenerator

SAMPLED = GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=10, seed=3)


class Recording:
    """`gen` as the runner sees it, recording each call's prompts' token counts (and killed, with an
    exception, when call `kill_at` starts)."""

    def __init__(self, gen: HFGenerator, kill_at: int | None = None):
        self.gen, self.kill_at, self.calls = gen, kill_at, []
        self.name, self.settings, self.capabilities = gen.name, gen.settings, gen.capabilities
        self.describe, self.token_usage = gen.describe, gen.token_usage

    def generate(self, prompts, n=1, **seeding):
        if self.kill_at is not None and len(self.calls) + 1 == self.kill_at:
            raise KeyboardInterrupt
        self.calls.append([self.gen.token_usage(p, [])["prompt_tokens"] for p in prompts])
        return self.gen.generate(prompts, n, **seeding)


def _rows(out) -> dict[tuple[str, int], str]:
    lines = (out / PREDICTIONS).read_text().splitlines()
    return {(r["id"], r["sample"]): r["completion"] for r in map(json.loads, lines)}


def _run(task, examples, gen, out, batch_size, samples=2, seed=3):
    info = run_info(task, examples, "synthetic", model="tiny", temperature=1.0, seed=seed, samples=samples)
    run_eval(task, examples, gen, out, samples=samples, batch_size=batch_size, info=info, progress=False)


@pytest.fixture(scope="module")
def sampled(tiny_model):
    return HFGenerator(str(tiny_model), SAMPLED)


def test_batches_hold_prompts_of_like_length_shortest_first(tmp_path, synthetic_csv, sampled):
    """Data order padded each batch to whichever long note it happened to hold; now the calls come
    shortest first and pad less in all."""
    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:9]
    lengths = [sampled.token_usage(task.render(ex), [])["prompt_tokens"] for ex in examples]
    assert len(set(lengths)) > 3  # the notes differ in length, so the order matters
    rec = Recording(sampled)
    _run(task, examples, rec, tmp_path / "run", batch_size=3, samples=1)
    flat = [k for call in rec.calls for k in call]
    assert flat == sorted(lengths) and [len(c) for c in rec.calls] == [3, 3, 3]
    padded = sum(len(c) * max(c) for c in rec.calls)
    in_data_order = sum(3 * max(lengths[i : i + 3]) for i in range(0, 9, 3))
    assert padded < in_data_order
    # and the predictions are still written in data order
    ids = [json.loads(line)["id"] for line in (tmp_path / "run" / PREDICTIONS).read_text().splitlines()]
    assert ids == [ex.id for ex in examples]


def test_sampled_rows_do_not_depend_on_batch_size(tmp_path, synthetic_csv, sampled):
    """Batches were seeded by their position, so --batch-size 1 and 4 sampled other text for the same
    (example, sample); each row now draws from its own seed: (--seed, its index in the data, sample)."""
    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:6]
    got = {}
    for size in (1, 4, 12):
        _run(task, examples, sampled, tmp_path / f"b{size}", batch_size=size)
        got[size] = _rows(tmp_path / f"b{size}")
    assert got[1] == got[4] == got[12]
    assert len(set(got[1].values())) > 6  # sampled: the rows differ, the comparison is not of one text
    # another --seed samples other text
    _run(task, examples, sampled, tmp_path / "other", batch_size=4, seed=4)
    assert _rows(tmp_path / "other") != got[4]


def test_a_row_samples_the_same_in_any_batch_order(synthetic_csv, sampled, tiny_model):
    """The same (example, sample) pairs in data order, shuffled, or each alone: the same completion each."""
    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:6]
    batch = [(ex, s) for ex in examples for s in range(2)]
    in_order = _generate_per_row(task, sampled, examples, batch, seed=3)
    shuffled = batch[:]
    random.Random(0).shuffle(shuffled)
    assert shuffled != batch
    mixed = _generate_per_row(task, sampled, examples, shuffled, seed=3)
    alone = [a for pair in batch for a in _generate_per_row(task, sampled, examples, [pair], seed=3)]

    def keyed(answers):
        return {(ex.id, s): text for ex, s, text, _ in answers}

    assert keyed(in_order) == keyed(mixed) == keyed(alone)
    # greedy too
    greedy = HFGenerator(str(tiny_model), GenerationSettings(temperature=0.0, max_new_tokens=10))
    g_order = _generate_per_row(task, greedy, examples, batch, seed=0)
    g_alone = [a for pair in batch for a in _generate_per_row(task, greedy, examples, [pair], seed=0)]
    assert keyed(g_order) == keyed(g_alone)


def test_row_seed_is_of_the_row_only():
    """Sample 0 is the same with --samples 1 or 4, and no two rows of a run share a seed."""
    seeds = {example_row_seed(0, i, s) for i in range(200) for s in range(4)}
    assert len(seeds) == 800
    assert example_row_seed(5, 2, 0) == example_row_seed(5, 2, 0) != example_row_seed(5, 3, 0)


def test_killed_run_resumes_with_only_the_missing_rows_byte_identically(tmp_path, synthetic_csv, sampled):
    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:5]
    _run(task, examples, sampled, tmp_path / "whole", batch_size=3)
    with pytest.raises(KeyboardInterrupt):
        _run(task, examples, Recording(sampled, kill_at=3), tmp_path / "resumed", batch_size=3)
    assert len((tmp_path / "resumed" / PREDICTIONS).read_text().splitlines()) == 6
    rec = Recording(sampled)
    _run(task, examples, rec, tmp_path / "resumed", batch_size=3)
    assert sum(len(c) for c in rec.calls) == 4  # only the 4 rows missing
    assert (tmp_path / "resumed" / PREDICTIONS).read_bytes() == (
        tmp_path / "whole" / PREDICTIONS
    ).read_bytes()


def test_a_folder_begun_under_the_old_seeding_is_not_continued(tmp_path, synthetic_csv, sampled):
    """A run killed before issue #30 seeded each batch by its position; continuing it with per-row seeds would
    mix two schemes in one predictions file. run.json records `seeding`, and resume compares it."""
    from ehrmind.errors import ConfigError

    task = get_task("medcalc")
    examples = task.load(synthetic_csv)[:5]
    with pytest.raises(KeyboardInterrupt):
        _run(task, examples, Recording(sampled, kill_at=2), tmp_path / "old", batch_size=3)
    run_json = tmp_path / "old" / "run.json"
    info = json.loads(run_json.read_text())
    assert info["seeding"] == "row"
    del info["seeding"]  # as an older ehrmind wrote it
    run_json.write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="seeding"):
        _run(task, examples, sampled, tmp_path / "old", batch_size=3)


@pytest.mark.slow  # the real model on real notes: ~1 min on 2 cores
def test_real_model_greedy_eval_is_the_same_batched_by_length_or_alone(
    tmp_path, real_model, medcalc_test_csv
):
    task = get_task("medcalc")
    examples = task.load(str(medcalc_test_csv))[:6]
    gen = HFGenerator(str(real_model), GenerationSettings(temperature=0.0, max_new_tokens=24))
    info = run_info(task, examples, "medcalc", model="real", temperature=0.0, seed=0, samples=1)
    run_eval(task, examples, gen, tmp_path / "b6", samples=1, batch_size=6, info=info, progress=False)
    run_eval(task, examples, gen, tmp_path / "b1", samples=1, batch_size=1, info=info, progress=False)
    assert _rows(tmp_path / "b6") == _rows(tmp_path / "b1")
