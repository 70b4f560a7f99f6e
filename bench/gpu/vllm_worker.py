"""vLLM offline worker of ``bench/gpu/run.py``: runs in the vLLM venv (stdlib + vllm, no culturelens).

Reads the token ids ``bench/gpu/raw_hf.py`` wrote (the exact tokens the hf backend scored), builds one
``vllm.LLM`` with prefix caching on or off, and writes JSON:

* ``--generate``: greedy generation (``SamplingParams(temperature=0, max_tokens=...)``, the model's
  end-of-sequence ids as stop tokens) of every generate prompt; seconds, generated tokens, texts;
* ``--logprobs``: ``prompt_logprobs`` of every (cloze context + option) sequence, the option's own token
  log-probs per row. ``--warm-cache`` first runs every context once (``max_tokens=1``) so that, with
  prefix caching on, the contexts sit in the cache when the log-probs are asked for; ``--passes 2``
  asks twice (the second pass has every full sequence cached too).

    .venv-vllm/bin/python bench/gpu/vllm_worker.py --model DIR --tokens tokens.json --out on.json \\
        --prefix-caching on --generate --logprobs --warm-cache --passes 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def option_logprobs(prompt_logprobs: Any, ids: list[int], start: int) -> list[float | None]:
    """Log-probs of ``ids[start:]`` from a vLLM ``prompt_logprobs`` list (None where vLLM gave none)."""
    out: list[float | None] = []
    for pos in range(start, len(ids)):
        entry = prompt_logprobs[pos] if prompt_logprobs is not None and pos < len(prompt_logprobs) else None
        lp = entry.get(ids[pos]) if entry else None
        out.append(None if lp is None else float(getattr(lp, "logprob", lp)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--prefix-caching", choices=("on", "off"), required=True)
    ap.add_argument("--generate", action="store_true")
    ap.add_argument("--logprobs", action="store_true")
    ap.add_argument("--warm-cache", action="store_true")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--max-model-len", type=int, default=0, help="0: the model's own")
    ap.add_argument("--enforce-eager", action="store_true")
    args = ap.parse_args()

    data = json.loads(args.tokens.read_text())
    t0 = time.perf_counter()
    import vllm
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=args.model,
        dtype=args.dtype,
        enable_prefix_caching=args.prefix_caching == "on",
        gpu_memory_utilization=args.gpu_memory_utilization,
        **({"max_model_len": args.max_model_len} if args.max_model_len > 0 else {}),
        enforce_eager=args.enforce_eager,
        seed=0,
    )
    out: dict[str, Any] = {
        "vllm": vllm.__version__,
        "prefix_caching": args.prefix_caching,
        "init_s": time.perf_counter() - t0,
    }
    eos = [int(t) for t in data.get("eos_ids") or []]

    if args.generate:
        gen = data["generate"]
        prompts = [{"prompt_token_ids": g["ids"]} for g in gen]
        params = [
            SamplingParams(
                temperature=0, max_tokens=g["max_tokens"], stop_token_ids=eos, skip_special_tokens=True
            )
            for g in gen
        ]
        t = time.perf_counter()
        res = llm.generate(prompts, params, use_tqdm=False)
        secs = time.perf_counter() - t
        texts, token_ids, n = {}, {}, 0
        for g, r in zip(gen, res, strict=True):
            toks = list(r.outputs[0].token_ids)
            while toks and toks[-1] in eos:
                toks.pop()
            n += len(toks)
            texts[g["id"]] = r.outputs[0].text
            token_ids[g["id"]] = toks
        out["generate"] = {
            "items": len(gen),
            "seconds": secs,
            "tokens": n,
            "tok_per_s": n / secs,
            "texts": texts,
            "token_ids": token_ids,
        }

    if args.logprobs:
        rows = [
            (c["id"], j, c["ctx"] + x, len(c["ctx"]))
            for c in data["cloze"]
            for j, x in enumerate(c["conts"])
            if x
        ]
        if args.warm_cache:
            t = time.perf_counter()
            llm.generate(
                [{"prompt_token_ids": c["ctx"]} for c in data["cloze"]],
                SamplingParams(temperature=0, max_tokens=1),
                use_tqdm=False,
            )
            out["warm_cache_s"] = time.perf_counter() - t
        passes = []
        params = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=1)
        try:
            for _ in range(max(1, args.passes)):
                t = time.perf_counter()
                res = llm.generate(
                    [{"prompt_token_ids": ids} for _, _, ids, _ in rows], params, use_tqdm=False
                )
                secs = time.perf_counter() - t
                values = {
                    f"{item}\t{j}": option_logprobs(r.prompt_logprobs, ids, start)
                    for (item, j, ids, start), r in zip(rows, res, strict=True)
                }
                passes.append(
                    {"seconds": secs, "tokens": sum(len(ids) for _, _, ids, _ in rows), "values": values}
                )
            out["logprobs"] = passes
        except Exception as exc:  # noqa: BLE001 - some vLLM versions refuse prompt_logprobs with prefix caching
            out["logprobs_error"] = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
    args.out.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
