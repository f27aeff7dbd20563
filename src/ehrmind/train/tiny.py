"""Build a small random-weight causal LM and its tokenizer entirely offline.

`build_tiny_model` trains a byte-level BPE tokenizer on a built-in clinical-flavoured corpus plus the texts
a task family passes in (`CorpusTexts`: its prompts, names and worked answers; this module holds none), wraps
it in `PreTrainedTokenizerFast` with a chat template, creates a randomly initialised Llama model sized to that
vocabulary and saves both with `save_pretrained`, so `AutoTokenizer.from_pretrained(out_dir)` and
`AutoModelForCausalLM.from_pretrained(out_dir)` work without the Hugging Face Hub. Tests and the CPU demo
(SFT, then GRPO) use it.

Design points:

* The tokenizer is byte-level (ByteLevel pre-tokenizer and decoder), so any text round-trips exactly,
  including "µmol/L", "×10⁹/L" and "−5"; every digit is its own token (helps arithmetic).
* `tokenizer_config.json` names the class `PreTrainedTokenizerFast`, so `AutoTokenizer` loads
  `tokenizer.json` as saved instead of a model-specific class that might rebuild the pre-tokenizer;
  the build re-loads the saved tokenizer and fails loudly if any id differs.
* Chat format: `<|begin|>` once, then `<|role|>\\n{content}<|end|>\\n` per message; the generation
  prompt is `<|assistant|>\\n`. Assistant content and its `<|end|>` sit in `{% generation %}` so
  `return_assistant_tokens_mask=True` (TRL's assistant-only loss) works, and `continue_final_message=True`
  leaves a final assistant message open for the model to continue.

torch, transformers and tokenizers are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrmind.io import atomic_folder, output_folder

BOS_TOKEN = "<|begin|>"
EOS_TOKEN = "<|end|>"
PAD_TOKEN = "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, *ROLE_TOKENS)
"""In this order they get ids 0..5."""

CHAT_TEMPLATE = (
    "{{ '<|begin|>' }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] + '<|end|>' }}"
    "{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""Jinja chat template. Newlines are emitted from expressions only: transformers renders with
`trim_blocks=True`, which would swallow a literal newline written after a `{% ... %}` tag."""

SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "vocab_size": 2048,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
    },
    "small": {
        "vocab_size": 4096,
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
    },
}
"""Architecture per size; `vocab_size` is the BPE training target (the model uses `len(tokenizer)`)."""

INFO_FILE = "ehrmind_tiny.json"


@dataclass(frozen=True)
class CorpusTexts:
    """What a task family adds to the tokenizer's training corpus, so the prompts and names the model will
    read are whole tokens: this module knows none of them. A family provides them as `tiny_corpus()` in a
    `tiny_corpus` module of its package (`family_texts` finds it)."""

    prompts: tuple[str, ...] = ()
    """Prompt texts (system prompts, headers), at the head of the corpus, 5 times over."""
    lines: tuple[str, ...] = ()
    """Further lines, once each (e.g. a question naming each of the family's subgroups)."""
    generate: Callable[[random.Random], list[str]] | None = None
    """Lines drawn from the corpus's random stream after each generated clinical note (e.g. worked answers
    in the task's output contract)."""


def family_texts(task: str) -> CorpusTexts:
    """The texts of the family task `task` belongs to: `tiny_corpus()` of the `tiny_corpus` module next to
    the task's class (e.g. `<family package>.tiny_corpus`); none for a family without one."""
    import importlib

    from ehrmind.registry import task_class

    package = task_class(task).__module__.rpartition(".")[0]
    try:
        module = importlib.import_module(f"{package}.tiny_corpus")
    except ModuleNotFoundError as e:
        if e.name != f"{package}.tiny_corpus":
            raise
        return CorpusTexts()
    return module.tiny_corpus()


# ---------------------------------------------------------------------------------------------- corpus

_COMMON_WORDS = (
    "the of and to in is was for on with as by at from that this it be are an or not have has had he she "
    "they we you his her their our its which who what when where how why all any some more most other such "
    "no yes only also than then there here after before during over under between into out up down about "
    "again very can will would should could may might must do does did done make made take taken give given "
    "find found use used need needed show shows shown see seen know known think thought first second third "
    "last next new old high low normal abnormal left right upper lower acute chronic mild moderate severe "
    "history patient patients man woman male female year years old age day days week weeks month months hour "
    "hours minute minutes time today yesterday date visit hospital clinic emergency department admitted "
    "discharged presented presents reports denies complains pain chest abdominal headache fever cough "
    "shortness breath nausea vomiting diarrhea fatigue weakness dizziness swelling rash bleeding "
    "examination exam vital signs blood pressure heart rate respiratory temperature oxygen saturation room "
    "air weight height body mass index laboratory results labs value values level levels test tests serum "
    "plasma urine sodium potassium chloride bicarbonate glucose creatinine urea nitrogen albumin bilirubin "
    "calcium magnesium phosphate hemoglobin hematocrit platelets white cell count liver kidney function "
    "medication medications dose doses daily twice three times tablet oral intravenous insulin aspirin "
    "warfarin heparin metformin lisinopril furosemide prednisone hydrocortisone morphine oxycodone "
    "diagnosis diagnosed treatment treated therapy started stopped continued improved worsened stable "
    "diabetes hypertension heart failure atrial fibrillation stroke pneumonia sepsis cancer pregnancy "
    "pregnant gestational menstrual period estimated due conception score points criteria calculate "
    "calculated calculation formula equation result answer step steps solve value unit units convert "
    "converted conversion multiply divide add subtract equals total sum mean average corrected adjusted "
    "therefore so because since thus given using based according rounded nearest decimal place"
).split()

_ENGLISH = (
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "Please answer the question below and explain your reasoning.",
    "What is the value? The answer is shown in the table.",
    "We can't be sure, but it's likely that they'll arrive tomorrow.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 20 50 100 1000 0.5 1.25 -3 +7 3/4 50% 1e-3",
    "Punctuation: . , ; : ! ? ' \" ( ) [ ] { } < > / \\ | - _ = + * & ^ % $ # @ ~ `",
    "Unicode: µ × ÷ − ± ≤ ≥ ° ² ³ ⁹ ½ → é ü ñ",
)

_LABS = (
    ("sodium", "Na", (125, 150, 0), "mmol/L"),
    ("potassium", "K", (2.8, 6.0, 1), "mmol/L"),
    ("chloride", "Cl", (90, 115, 0), "mmol/L"),
    ("bicarbonate", "HCO3", (12, 32, 0), "mEq/L"),
    ("blood urea nitrogen", "BUN", (5, 80, 0), "mg/dL"),
    ("creatinine", "Cr", (0.5, 6.0, 2), "mg/dL"),
    ("creatinine", "Cr", (45, 500, 0), "µmol/L"),
    ("glucose", "Glu", (60, 450, 0), "mg/dL"),
    ("glucose", "Glu", (3.5, 25.0, 1), "mmol/L"),
    ("albumin", "Alb", (1.8, 5.0, 1), "g/dL"),
    ("total bilirubin", "TBil", (0.2, 12.0, 1), "mg/dL"),
    ("total bilirubin", "TBil", (5, 200, 0), "µmol/L"),
    ("calcium", "Ca", (6.5, 11.5, 1), "mg/dL"),
    ("hemoglobin", "Hb", (6.0, 17.5, 1), "g/dL"),
    ("platelets", "PLT", (40, 450, 0), "×10⁹/L"),
    ("white blood cell count", "WBC", (2.0, 25.0, 1), "× 10^9/L"),
    ("INR", "INR", (0.9, 4.5, 1), ""),
    ("AST", "AST", (10, 400, 0), "U/L"),
    ("ALT", "ALT", (10, 400, 0), "U/L"),
    ("LDL cholesterol", "LDL", (50, 220, 0), "mg/dL"),
    ("HDL cholesterol", "HDL", (25, 90, 0), "mg/dL"),
    ("triglycerides", "TG", (50, 400, 0), "mg/dL"),
    ("HbA1c", "HbA1c", (4.5, 12.5, 1), "%"),
    ("lactate", "Lac", (0.5, 8.0, 1), "mmol/L"),
    ("base excess", "BE", (-12, 4, 0), "mEq/L"),
    ("insulin", "Ins", (2, 40, 1), "µIU/mL"),
)


_ROOTS = (
    "cardi hepat nephr neur gastr pulmon derm oste arthr hemat my encephal cyt lip gluc glyc thromb angi "
    "ven arteri bronch pneum rhin ot ophthalm col enter pancreat thyr aden lymph onc path psych ur cyst "
    "hyster mamm crani chondr fibr leuk erythr granul cholecyst splen esophag laryng trache phleb pyel ren "
    "prostat ovari uter fet calc natr kal album bilirubin creatin ket acid alkal cholester insulin"
).split()
_SUFFIXES = (
    "itis ology ologist ectomy otomy ostomy oma osis emia uria algia pathy megaly plasty scopy gram graphy "
    "genic ic al ous penia philia stasis lysis rrhea trophy plegia sclerosis"
).split()
_PREFIXES = (
    "hyper hypo an dys brady tachy poly peri endo epi sub trans intra inter pre post anti non re".split()
)
_VERB_ENDINGS = ("", "s", "ed", "ing")


def _medical_words() -> list[str]:
    """Combinatorial clinical-looking vocabulary (roots x suffixes, prefixes x roots) for BPE diversity."""
    words = []
    for root in _ROOTS:
        for suffix in _SUFFIXES:
            joint = "" if suffix[0] in "aeiou" or root[-1] in "aeiou" else "o"
            words.append(root + joint + suffix)
        for prefix in _PREFIXES:
            words.append(prefix + root + "ia")
    return words


def _num(rng: random.Random, lo: float, hi: float, places: int) -> str:
    value = round(rng.uniform(lo, hi), places)
    text = f"{value:.{places}f}"
    if text.startswith("-"):  # notes mix the ASCII hyphen and the unicode minus sign
        text = rng.choice(("-", "−")) + text[1:]
    return text


def random_date(rng: random.Random) -> str:
    """A date as MM/DD/YYYY drawn from `rng` (for a task family's generated corpus lines too)."""
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(1995, 2024)}"


def _note(rng: random.Random) -> str:
    age, sex = rng.randint(18, 92), rng.choice(("man", "woman", "male", "female"))
    complaint = rng.choice(
        (
            "chest pain",
            "shortness of breath",
            "fever and cough",
            "abdominal pain",
            "dizziness",
            "leg swelling",
        )
    )
    parts = [
        f"A {age}-year-old {sex} presented to the emergency department with {rng.randint(1, 14)} days of "
        f"{complaint}.",
        f"Vital signs: blood pressure {rng.randint(85, 190)}/{rng.randint(45, 115)} mmHg, heart rate "
        f"{rng.randint(45, 140)} bpm, respiratory rate {rng.randint(10, 32)} breaths/min, temperature "
        f"{_num(rng, 35.5, 40.5, 1)} °C, SpO2 {rng.randint(84, 100)}% on room air.",
        f"Weight {_num(rng, 40, 130, 1)} kg, height {rng.randint(145, 200)} cm.",
    ]
    labs = rng.sample(_LABS, k=rng.randint(3, 7))
    lab_texts = []
    for name, abbr, (lo, hi, places), unit in labs:
        label = name if rng.random() < 0.6 else abbr
        lab_texts.append(f"{label} {_num(rng, lo, hi, places)} {unit}".rstrip())
    parts.append("Laboratory results: " + ", ".join(lab_texts) + ".")
    if rng.random() < 0.3:
        parts.append(
            f"History of {rng.choice(('hypertension', 'diabetes', 'heart failure', 'stroke'))}; "
            f"takes {rng.choice(('metformin', 'lisinopril', 'warfarin', 'aspirin'))} "
            f"{rng.choice((5, 10, 20, 40, 500, 850))} mg {rng.choice(('daily', 'twice daily'))}."
        )
    if rng.random() < 0.2:
        parts.append(
            f"Her last menstrual period was on {random_date(rng)}. Today's date is {random_date(rng)}. "
            f"Her cycle length is {rng.randint(21, 35)} days."
        )
    return " ".join(parts)


def _sentence(rng: random.Random, vocabulary: list[str]) -> str:
    words = []
    for _ in range(rng.randint(5, 16)):
        if rng.random() < 0.7:
            words.append(rng.choice(_COMMON_WORDS) + rng.choice(_VERB_ENDINGS[:1] * 6 + _VERB_ENDINGS[1:]))
        else:
            words.append(rng.choice(vocabulary))
    return " ".join(words).capitalize() + rng.choice((".", ".", "?", ",", ":"))


def _arithmetic(rng: random.Random) -> str:
    a, b = rng.randint(0, 999), rng.randint(1, 99)
    op = rng.choice(("+", "-", "×", "*", "/"))
    if op == "+":
        value: float = a + b
    elif op == "-":
        value = a - b
    elif op in ("×", "*"):
        value = a * b
    else:
        value = round(a / b, 2)
    return f"{a} {op} {b} = {value}"


def default_corpus(n: int = 800, seed: int = 0, texts: CorpusTexts | None = None) -> list[str]:
    """A deterministic tokenizer-training corpus: the task family's `texts` (its prompts, 5 times over,
    first; its lines; its generated lines, drawn after each clinical note), common English, digits and the
    `<think>`/`<answer>` contract, then clinical-note-like text with numbers and units, dates, JSON answers,
    arithmetic and clinical vocabulary. `n` scales the number of generated lines."""
    texts = texts or CorpusTexts()
    rng = random.Random(seed)
    medical = _medical_words()
    lines: list[str] = []
    lines += list(texts.prompts) * 5
    lines += list(_ENGLISH) * 3
    lines += list(texts.lines)
    lines += [" ".join("0123456789"), "0123456789", "<think> </think> <answer> </answer>"]
    for _ in range(n):
        lines.append(_note(rng))
        if texts.generate is not None:
            lines += texts.generate(rng)
        lines.append(_sentence(rng, medical))
        lines.append(_sentence(rng, medical))
        lines.append(_arithmetic(rng))
        if rng.random() < 0.25:
            lines.append(f'{{"answer": {_num(rng, -20, 500, rng.choice((0, 1, 2)))}}}')
            lines.append(f'{{"answer": "{random_date(rng)}"}}')
    lines += list(_COMMON_WORDS) + medical
    return lines


# ------------------------------------------------------------------------------------------- tokenizer

_PROBE_TEXTS = (
    "",
    "Creatinine 1.2 mg/dL (106 µmol/L); platelets 150 ×10⁹/L; base excess −5 mEq/L.",
    '<think>2+2</think>\n<answer>{"answer": 4}</answer>',
    'LMP 09/23/2014 → ["34 weeks", "2 days"]  \t trailing  spaces \n\n',
    "émoji 😀 and CJK 中文",
    "<|begin|><|user|>\nhi<|end|>\n<|assistant|>\n",
)


def build_tokenizer(
    vocab_size: int = 2048, corpus: Iterable[str] | None = None, *, texts: CorpusTexts | None = None
) -> Any:
    """Train the byte-level BPE on `default_corpus(texts=texts)` (a task family's prompts and names) plus
    `corpus`; returns a `PreTrainedTokenizerFast` with the special tokens, left padding and the chat template
    set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = default_corpus(texts=texts)
    if corpus is not None:
        lines += [str(t) for t in corpus]
    backend.train_from_iterator(lines, trainer=trainer, length=len(lines))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        add_bos_token=False,
        add_eos_token=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """`save_pretrained`, then name the class `PreTrainedTokenizerFast` in tokenizer_config.json.

    transformers 5 writes the runtime class name (`TokenizersBackend`, which older versions do not know);
    `PreTrainedTokenizerFast` loads `tokenizer.json` verbatim in both 4.x and 5.x, and keeps AutoTokenizer
    away from a model-specific class that could rebuild the pre-tokenizer."""
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")


def _check_reload(tokenizer: Any, out_dir: Path) -> None:
    """Reload the saved tokenizer the way users will and fail loudly if any id or the template changed."""
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(out_dir, local_files_only=True)
    for text in _PROBE_TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if reloaded.encode(text, add_special_tokens=False) != ids or reloaded.decode(ids) != text:
            raise RuntimeError(f"tokenizer saved to {out_dir} does not reload identically (text {text!r})")
    if reloaded.chat_template != tokenizer.chat_template or len(reloaded) != len(tokenizer):
        raise RuntimeError(f"tokenizer saved to {out_dir} lost its chat template or vocabulary on reload")
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(reloaded, name) != getattr(tokenizer, name):
            raise RuntimeError(f"tokenizer saved to {out_dir} reloads with a different {name}")


# ----------------------------------------------------------------------------------------------- model


def build_tiny_model(
    out_dir: str | Path,
    size: str = "tiny",
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    *,
    texts: CorpusTexts | None = None,
) -> Path:
    """Build a random-weight Llama causal LM plus tokenizer locally and save both to `out_dir`.

    `size` is "tiny" (~0.2M parameters) or "small" (~4M). `texts` are the task family's share of the
    tokenizer corpus (its prompts and names, from the family's own module), `corpus` further lines (e.g. the
    training notes). The same `seed` (and texts and corpus) gives identical weights. Writes the model
    (safetensors), generation config, tokenizer with chat template and `ehrmind_tiny.json` (size, seed, vocab
    size, parameter count). Returns `out_dir` as a Path.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    import torch
    import transformers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    spec = SIZES[size]
    out = output_folder(out_dir, create=False)  # checked now, written at the end (atomic_folder)

    tokenizer = build_tokenizer(spec["vocab_size"], corpus, texts=texts)
    tokenizer.model_max_length = spec["max_position_embeddings"]
    special_ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        max_position_embeddings=spec["max_position_embeddings"],
        tie_word_embeddings=True,
        **special_ids,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(do_sample=False, **special_ids)

    info = {
        "size": size,
        "seed": seed,
        "architecture": "LlamaForCausalLM",
        "vocab_size": len(tokenizer),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        **{k: v for k, v in spec.items() if k != "vocab_size"},
        **special_ids,
        "special_tokens": list(SPECIAL_TOKENS),
        "extra_corpus": corpus is not None,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }
    with atomic_folder(out) as tmp:  # a failed save (disk full) leaves no folder that looks like a model
        model.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        _save_tokenizer(tokenizer, tmp)
        _check_reload(tokenizer, tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
