"""Greedy generation straight through llama-cpp-python: the floor for culturelens's llama.cpp generate
mode; called by ``bench/generate.py`` in a fresh process of the main venv.

    python bench/raw_llamacpp_gen.py DOCS.jsonl OUT.json --gguf FILE --max-tokens 64 [--no-extra-bufts]

``DOCS.jsonl`` rows are ``{"id", "query"}`` with the exact prompt text culturelens sent (chat template
already applied). ``llama_cpp.Llama`` is built with the arguments culturelens's llamacpp backend passes
(n_ctx 4096, n_batch 512, n_threads = CPU count, logits_all off, and its extra-buffer-types choice), and
each prompt is tokenized the way the backend does it (BOS added, special tokens parsed, a doubled BOS
dropped). Per prompt, from an empty KV cache: ``Llama.eval`` the prompt, then argmax of the last
logits, ``eval`` that one token, until EOS or ``max_tokens`` (no stop strings, as the backend).
Only that loop is timed. Writes the texts, the token counts and the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# what LlamaCppBackend passes (src/culturelens/backends/llamacpp.py): defaults of its constructor
N_CTX = 4096
N_BATCH = 512


def open_llama(path: str, use_extra_bufts: bool):
    import llama_cpp
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def without_extra_bufts():
        params = original()
        params.use_extra_bufts = False
        return params

    if not use_extra_bufts:  # not a Llama() argument: the backend patches the default params the same way
        lib.llama_model_default_params = without_extra_bufts
    try:
        return llama_cpp.Llama(
            model_path=path,
            n_ctx=N_CTX,
            n_batch=N_BATCH,
            n_threads=max(1, os.cpu_count() or 2),
            logits_all=False,
            verbose=False,
        )
    finally:
        lib.llama_model_default_params = original


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("docs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--no-extra-bufts", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import llama_cpp

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    llm = open_llama(args.gguf, not args.no_extra_bufts)
    load_s = time.perf_counter() - t0
    rows = [json.loads(x) for x in args.docs.read_text().splitlines()]
    bos, eos, n_vocab = llm.token_bos(), llm.token_eos(), llm.n_vocab()
    prompts = []
    for r in rows:
        toks = llm.tokenize(r["query"].encode("utf-8"), add_bos=True, special=True)
        if len(toks) > 1 and toks[0] == bos and toks[1] == bos:
            toks = toks[1:]
        prompts.append(toks)

    gens: list[list[int]] = []
    t0 = time.perf_counter()
    for toks in prompts:
        llm.reset()  # empty KV cache: eval() drops everything from n_tokens on
        llm.eval(toks)
        gen: list[int] = []
        for _ in range(args.max_tokens):
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
            nxt = int(np.argmax(logits))
            if nxt == eos:
                break
            gen.append(nxt)
            if llm.n_tokens + 1 > N_CTX:
                break
            llm.eval([nxt])
        gens.append(gen)
    seconds = time.perf_counter() - t0
    texts = {
        r["id"]: llm.detokenize(g).decode("utf-8", errors="replace") for r, g in zip(rows, gens, strict=True)
    }
    llm.close()
    n = sum(map(len, gens))
    args.out.write_text(
        json.dumps(
            {
                "texts": texts,
                "n_tokens": {r["id"]: len(g) for r, g in zip(rows, gens, strict=True)},
                "prompt_tokens": sum(map(len, prompts)),
                "tokens": n,
                "seconds": seconds,
                "tok_per_s": n / seconds if seconds else None,
                "import_s": import_s,
                "load_s": load_s,
                "options": {
                    "n_ctx": N_CTX,
                    "n_batch": N_BATCH,
                    "n_threads": max(1, os.cpu_count() or 2),
                    "use_extra_bufts": not args.no_extra_bufts,
                    "version": llama_cpp.__version__,
                },
            },
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
