"""The tiny local model: offline build, exact tokenizer save/reload, chat template, seeded weights."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ehrmind.tasks.medcalc.tiny_corpus import tiny_corpus
from ehrmind.train.tiny import (
    CHAT_TEMPLATE,
    EOS_TOKEN,
    INFO_FILE,
    SIZES,
    CorpusTexts,
    build_tiny_model,
    build_tokenizer,
    default_corpus,
    family_texts,
)

TEXTS = [
    "A 67-year-old man. Creatinine 1.4 mg/dL (124 µmol/L), sodium 132 mmol/L, base excess −5 mEq/L.",
    "Platelets 150 ×10⁹/L; WBC 12.3 × 10^9/L; temperature 38.2 °C; BMI 23.5 kg/m².",
    "−5",
    '<think>2+2</think><answer>{"answer": 4}</answer>',
    '<think>LMP 09/23/2014, today 03/15/2015.</think>\n<answer>{"answer": ["24 weeks", "5 days"]}</answer>',
    "",
    "emoji 😀👍🏽 and CJK 中文 and tabs\tand  double  spaces \n\n trailing ",
    "<|begin|><|user|>\nhi<|end|>\n",
]
PREFILL = "Let me solve this step by step.\n<think>"
MEDCALC = tiny_corpus()
"""The texts the tests' and the demo's tiny model is built with."""

PUBLISHED_CORPUS_SHA256 = "f6d87c026050ba6055aff70e17c6dbf9aa7b32b1013f97235d313d169b175dd7"
"""sha256 of the tokenizer corpus (lines joined by newlines) the published tiny model (`make demo`) was built
from, when tiny.py still held MedCalc's prompts and calculator names (#27 moved them to
`ehrmind.tasks.medcalc.tiny_corpus`)."""
PUBLISHED_VOCAB_SHA256 = "168db0ec4653b270cbf2e49ee56ddd0c0ad433f33e8abec140cddf616af2eca4"
"""sha256 of that tokenizer's [vocab, merges] (JSON, sorted keys)."""


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", size="tiny", seed=0, texts=MEDCALC)


@pytest.fixture(scope="module")
def reloaded_tokenizer(built):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(built, local_files_only=True)


@pytest.fixture(scope="module")
def reloaded_model(built):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(built, local_files_only=True).eval()


def _messages(final_assistant: str | None = None) -> list[dict[str, str]]:
    messages = [
        {"role": "system", "content": "You are a careful clinical assistant."},
        {
            "role": "user",
            "content": "Here is the patient note:\nNa 140, Cl 100, HCO3 24.\n\nCompute the anion gap.",
        },
    ]
    if final_assistant is not None:
        messages.append({"role": "assistant", "content": final_assistant})
    return messages


# ------------------------------------------------------------------------------------------- tokenizer


def test_saved_files_and_metadata(built):
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", INFO_FILE):
        assert (built / name).is_file(), name
    tok_config = json.loads((built / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tok_config["padding_side"] == "left"
    info = json.loads((built / INFO_FILE).read_text(encoding="utf-8"))
    assert info["size"] == "tiny" and info["seed"] == 0
    assert info["vocab_size"] == SIZES["tiny"]["vocab_size"] == 2048
    assert 100_000 < info["n_parameters"] < 1_000_000


def test_reload_gives_identical_ids_and_exact_text(built, reloaded_tokenizer):
    in_memory = build_tokenizer(
        SIZES["tiny"]["vocab_size"], texts=MEDCALC
    )  # deterministic: the tokenizer that was saved
    reloaded = reloaded_tokenizer
    assert type(reloaded).__name__ in ("TokenizersBackend", "PreTrainedTokenizerFast")
    assert str(reloaded.backend_tokenizer.pre_tokenizer) == str(in_memory.backend_tokenizer.pre_tokenizer)
    assert reloaded.get_vocab() == in_memory.get_vocab()
    for text in TEXTS:
        ids = in_memory.encode(text)
        assert reloaded.encode(text) == ids, text
        assert reloaded.decode(ids) == text
        assert in_memory.decode(ids) == text
    assert in_memory.encode("") == []  # no bos/eos added to plain text


def test_special_tokens_and_digits(reloaded_tokenizer):
    tok = reloaded_tokenizer
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|begin|>", "<|end|>", "<|pad|>")
    assert tok.padding_side == "left"
    for marker in ("<|begin|>", "<|end|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"):
        ids = tok.encode(marker)
        assert len(ids) == 1 and ids[0] < 6, marker
    assert tok.decode(tok.encode("<|user|>\nhi<|end|>"), skip_special_tokens=True) == "\nhi"
    tokens = tok.convert_ids_to_tokens(tok.encode("12.75 and 2048"))
    assert [t for t in tokens if any(c.isdigit() for c in t)] == list("1275") + list("2048")


def test_extra_corpus_extends_vocabulary():
    assert "Ġzorblaxitine" not in build_tokenizer(2048).get_vocab()
    tok = build_tokenizer(2048, corpus=["dose of zorblaxitine 5 mg"] * 50)
    assert "Ġzorblaxitine" in tok.get_vocab()
    assert len(default_corpus()) > 1000


def test_medcalc_texts_give_the_published_tokenizer(built):
    """The demo's published numbers were made with this tokenizer: MedCalc's texts, now passed in by the
    family, must build the corpus (and vocabulary) tiny.py once held, line for line."""
    lines = default_corpus(texts=MEDCALC)
    assert len(lines) == 8054
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    assert digest == PUBLISHED_CORPUS_SHA256, (
        "a changed tiny corpus is a new tiny model (and new demo numbers)"
    )
    model = json.loads((built / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    vocab = json.dumps([model["vocab"], model["merges"]], sort_keys=True).encode("utf-8")
    assert hashlib.sha256(vocab).hexdigest() == PUBLISHED_VOCAB_SHA256
    assert lines[: 5 * len(MEDCALC.prompts)] == list(MEDCALC.prompts) * 5  # the prompts lead, 5 times over


def test_generic_corpus_names_no_task():
    """Without a family's texts the corpus holds none of MedCalc's prompts or names."""
    lines = set(default_corpus())
    assert not lines & set(MEDCALC.prompts) and not lines & set(MEDCALC.lines)
    assert not any("weeks" in line and "<answer>" in line for line in lines)  # its worked answers
    source = Path(sys.modules[default_corpus.__module__].__file__).read_text(encoding="utf-8")
    assert "medcalc" not in source.lower() and "Cockcroft" not in source


def test_a_family_gives_its_texts_and_the_cli_builds_the_demos_tokenizer(built, tmp_path):
    from typer.testing import CliRunner

    from ehrmind.cli import app

    assert family_texts("medcalc") == MEDCALC
    assert family_texts("trec_ct") == CorpusTexts()  # a family without a tiny_corpus module adds nothing
    result = CliRunner().invoke(app, ["tiny-model", "--out", str(tmp_path / "cli")])  # the demo's task
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()


# --------------------------------------------------------------------------------------- chat template


def test_chat_template_generation_prompt(reloaded_tokenizer):
    tok = reloaded_tokenizer
    assert tok.chat_template == CHAT_TEMPLATE
    text = tok.apply_chat_template(_messages(), tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|begin|><|system|>\nYou are a careful clinical assistant.<|end|>\n"
        "<|user|>\nHere is the patient note:\nNa 140, Cl 100, HCO3 24.\n\nCompute the anion gap.<|end|>\n"
        "<|assistant|>\n"
    )
    no_prompt = tok.apply_chat_template(_messages(), tokenize=False)
    assert no_prompt.endswith("Compute the anion gap.<|end|>\n") and no_prompt.count("<|begin|>") == 1


def test_continue_final_message(reloaded_tokenizer):
    tok = reloaded_tokenizer
    text = tok.apply_chat_template(_messages(PREFILL), tokenize=False, continue_final_message=True)
    assert text.endswith("<|assistant|>\n" + PREFILL)
    assert text.endswith("<think>")
    ids = tok.apply_chat_template(_messages(PREFILL), tokenize=True, continue_final_message=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert tok.decode(ids) == text and ids[-1] != tok.eos_token_id


def test_assistant_tokens_mask(reloaded_tokenizer):
    tok = reloaded_tokenizer
    first = '<think>140 − (100 + 24) = 16</think>\n<answer>{"answer": 16}</answer>'
    second = "Yes, 16 mEq/L."
    messages = [
        *_messages(first),
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": second},
    ]
    out = tok.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert len(ids) == len(mask) and set(mask) == {0, 1}
    assert ids == tok.encode(tok.apply_chat_template(messages, tokenize=False))

    runs, start = [], None  # contiguous runs of ones
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    assistant_id = tok.convert_tokens_to_ids("<|assistant|>")
    assert [tok.decode(ids[a:b]) for a, b in runs] == [first + EOS_TOKEN, second + EOS_TOKEN]
    for a, b in runs:
        assert ids[a - 2] == assistant_id and tok.decode(ids[a - 1 : a]) == "\n"  # header is not trained on
        assert ids[b - 1] == tok.eos_token_id  # the turn's <|end|> is trained on
        assert tok.decode(ids[b : b + 1]) == "\n"


# ----------------------------------------------------------------------------------------------- model


def _state(path: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True).state_dict()


def test_seed_determines_weights(built, tmp_path):
    import torch

    same = build_tiny_model(tmp_path / "same", size="tiny", seed=0, texts=MEDCALC)
    other = build_tiny_model(tmp_path / "other", size="tiny", seed=1, texts=MEDCALC)
    assert (same / "tokenizer.json").read_bytes() == (built / "tokenizer.json").read_bytes()
    a, b, c = _state(built), _state(same), _state(other)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_forward_and_generate(reloaded_model, reloaded_tokenizer):
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    model, tok = reloaded_model, reloaded_tokenizer
    vocab = len(tok)
    assert model.config.vocab_size == vocab
    gen = model.generation_config
    assert gen.eos_token_id == tok.eos_token_id == model.config.eos_token_id
    assert gen.pad_token_id == tok.pad_token_id and gen.bos_token_id == tok.bos_token_id
    assert not gen.do_sample

    prompt = tok.apply_chat_template(_messages(), tokenize=False, add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], vocab)

    out = model.generate(**enc, max_new_tokens=5)
    new = out[0, enc["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 5 and int(out.max()) < vocab and int(out.min()) >= 0

    class ForceEosAfterTwo(LogitsProcessor):
        def __call__(self, input_ids, scores):
            if input_ids.shape[1] - enc["input_ids"].shape[1] >= 2:
                scores = torch.full_like(scores, -float("inf"))
                scores[:, tok.eos_token_id] = 0.0
            return scores

    out = model.generate(**enc, max_new_tokens=5, logits_processor=LogitsProcessorList([ForceEosAfterTwo()]))
    new = out[0, enc["input_ids"].shape[1] :].tolist()
    assert len(new) == 3 and new[-1] == tok.eos_token_id  # stopped at eos, not at max_new_tokens

    batch = tok([prompt, "short"], return_tensors="pt", padding=True)  # left padding
    assert batch["input_ids"][1, 0] == tok.pad_token_id and batch["attention_mask"][1, 0] == 0
    out = model.generate(**batch, max_new_tokens=3)
    assert out.shape[0] == 2 and int(out.max()) < vocab


def test_small_size_is_bigger(built, tmp_path):
    small = build_tiny_model(tmp_path / "small", size="small", seed=0)
    info_small = json.loads((small / INFO_FILE).read_text(encoding="utf-8"))
    info_tiny = json.loads((built / INFO_FILE).read_text(encoding="utf-8"))
    assert info_small["n_parameters"] > info_tiny["n_parameters"]
    assert info_small["vocab_size"] == 4096 and info_small["hidden_size"] == 256


def test_bad_size_rejected(tmp_path):
    with pytest.raises(ValueError, match="size"):
        build_tiny_model(tmp_path / "x", size="huge")
    assert not (tmp_path / "x").exists()


def test_import_is_light():
    code = "import sys, ehrmind.train.tiny; print(sorted({'torch', 'transformers', 'tokenizers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
