"""The raw transformers baseline of ``bench/gpu/run.py`` (run in its own process by the main venv).

Reads the prompts (and cloze continuations) of the three culturelens runs from their ``samples.jsonl``,
tokenises them exactly as the hf backend does (:meth:`HFBackend.encode`: BOS once; continuations
without special tokens), and times the bare model on the same micro-batches the backend cuts
(sorted by length, at most ``batch_size`` requests and ``max_batch_tokens`` padded tokens):

* letter: one left-padded forward pass per batch, log-softmax at the last position only;
* cloze: one left-padded forward pass over every (context + option) row, log-softmax over the
  option's positions only, the option's token log-probs gathered (no prefix sharing);
* generate: ``model.generate`` greedy, left-padded, ``max_new_tokens`` = the request's budget.

One small batch per mode runs first, untimed (CUDA kernels and allocator warm-up), and the clock stops
after ``torch.cuda.synchronize()``. Writes the figures (``--out``) and the token ids that the vLLM
worker scores (``--tokens``).

    .venv/bin/python bench/gpu/raw_hf.py --model hf:embedded --runs DIR --out raw.json --tokens tokens.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def chunks(costs: Sequence[tuple[int, int]], batch_size: int, max_batch_tokens: int) -> Iterator[list[int]]:
    """The hf backend's micro-batches (``HFBackend._chunks``), from the backend itself."""
    from culturelens.backends.hf import length_chunks

    return length_chunks(costs, batch_size, max_batch_tokens)


def read_samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="hf:embedded")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-batch-tokens", type=int, default=8192)
    ap.add_argument("--runs", type=Path, required=True, help="folder holding the letter/cloze/generate runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tokens", type=Path, required=True)
    args = ap.parse_args()

    import torch

    from culturelens.backends.base import load_backend

    spec = args.model.removeprefix("hf:")
    be: Any = load_backend(
        f"hf:{spec}",
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
    )
    model, tok, dev = be.model, be.tok, be.device
    cuda = str(dev).startswith("cuda")
    out: dict[str, Any] = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
        "dtype": str(be.dtype).removeprefix("torch."),
        "torch": torch.__version__,
        "loaded_from": be.loaded_from,
        "load_s": be.load_seconds,
    }
    # the folder vLLM should load: the dequantised copy of a GGUF (written by the culturelens runs), a
    # local folder, or a hub id
    model_path = be.loaded_from
    if model_path.endswith(".gguf"):
        from culturelens.backends.hf import dequantised_dir

        model_path = str(dequantised_dir(be.identity()["sha256"]))
    out["model_path"] = model_path

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def left(seqs: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        ids, mask, _ = be._pad(seqs, "left")
        return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)

    def warm(fn: Any, items: list[Any]) -> None:
        if cuda and items:  # CUDA kernels, cuBLAS handles, the allocator; nothing to warm on a CPU
            fn(items[: min(len(items), 4)])
            sync()

    def timed(fn: Any, batches: list[list[Any]]) -> tuple[float, list[Any]]:
        res: list[Any] = []
        sync()
        t0 = time.perf_counter()
        for b in batches:
            res.extend(fn(b))
        sync()
        return time.perf_counter() - t0, res

    tokens: dict[str, Any] = {"eos_ids": be.eos_ids, "model_path": model_path}

    # --- letter -------------------------------------------------------------------------------------
    letter = read_samples(args.runs / "letter")
    lids = [be.encode(s["prompt"]) for s in letter]

    def letter_fn(batch: list[list[int]]) -> list[Any]:
        ids, mask, pos = left(batch)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits
            return [torch.log_softmax(logits[:, -1].float(), dim=-1).argmax(-1)]

    batches = [
        [lids[i] for i in c] for c in chunks([(1, len(x)) for x in lids], be.batch_size, be.max_batch_tokens)
    ]
    warm(letter_fn, lids)
    secs, _ = timed(letter_fn, batches)
    n = sum(map(len, lids))
    out["letter"] = {
        "items": len(lids),
        "tokens": n,
        "seconds": secs,
        "tok_per_s": n / secs,
        "batches": len(batches),
    }

    # --- cloze --------------------------------------------------------------------------------------
    cloze = read_samples(args.runs / "cloze")
    ctxs = [be.encode(s["prompt"]) for s in cloze]
    conts = [[list(tok(t, add_special_tokens=False)["input_ids"]) for t in s["targets"]] for s in cloze]
    tokens["cloze"] = [
        {"id": s["item_id"], "ctx": c, "conts": cs, "hf_logprobs": s["response"]["logprobs"]}
        for s, c, cs in zip(cloze, ctxs, conts, strict=True)
    ]

    def cloze_fn(batch: list[tuple[list[int], list[list[int]]]]) -> list[Any]:
        rows = [(ctx + c, len(c)) for ctx, cs in batch for c in cs if c]
        keep = max(n for _, n in rows) + 1
        ids, mask, pos = left([r for r, _ in rows])
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # predictions of the last keep-1 tokens
            nxt = ids[:, -(keep - 1) :]
            got = logp.gather(-1, nxt[..., None])[..., 0]
            sums = [got[b, -n:].sum() for b, (_, n) in enumerate(rows)]
        return [torch.stack(sums)]

    pairs = list(zip(ctxs, conts, strict=True))
    costs = [(max(1, len(cs)), len(c) + max((len(x) for x in cs), default=0)) for c, cs in pairs]
    batches = [[pairs[i] for i in c] for c in chunks(costs, be.batch_size, be.max_batch_tokens)]
    warm(cloze_fn, pairs)
    secs, res = timed(cloze_fn, batches)
    n = sum(len(c) + len(x) for c, cs in pairs for x in cs)
    out["cloze"] = {
        "items": len(pairs),
        "tokens": n,
        "seconds": secs,
        "tok_per_s": n / secs,
        "batches": len(batches),
    }
    # the plain forward pass's option log-probs against culturelens's (prefix-shared) ones, as a check
    order = [i for c in chunks(costs, be.batch_size, be.max_batch_tokens) for i in c]
    raw_sums = [float(v) for block in res for v in block.cpu()]
    flat = [(i, j) for i in order for j, x in enumerate(conts[i]) if x]
    diffs = [abs(v - cloze[i]["response"]["logprobs"][j]) for (i, j), v in zip(flat, raw_sums, strict=True)]
    out["cloze"]["max_abs_diff_vs_culturelens"] = max(diffs, default=0.0)

    # --- generate -----------------------------------------------------------------------------------
    gen = read_samples(args.runs / "generate")
    gids = [be.encode(s["prompt"]) for s in gen]
    from culturelens.schema import Prompt

    budget = int(Prompt.model_fields["max_tokens"].default)  # samples do not record it; the task's default
    budgets = [int(s.get("max_tokens") or budget) for s in gen]
    eos = set(be.eos_ids)

    def gen_fn(batch: list[tuple[list[int], int]]) -> list[Any]:
        ids, mask, _ = be._pad([b[0] for b in batch], "left")
        kw: dict[str, Any] = {"max_new_tokens": max(b[1] for b in batch), "pad_token_id": be.pad_id}
        if be.eos_ids:
            kw["eos_token_id"] = be.eos_ids
        with torch.inference_mode():
            g = model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                temperature=None,
                top_k=None,
                top_p=None,
                **kw,
            )
        return [g[:, ids.shape[1] :]]

    gpairs = list(zip(gids, budgets, strict=True))
    costs = [(1, len(x) + m) for x, m in gpairs]
    order = [i for c in chunks(costs, be.batch_size, be.max_batch_tokens) for i in c]
    batches = [[gpairs[i] for i in c] for c in chunks(costs, be.batch_size, be.max_batch_tokens)]
    warm(gen_fn, gpairs)
    secs, res = timed(gen_fn, batches)
    texts: dict[str, str] = {}
    gen_ids: dict[str, list[int]] = {}
    n = 0
    k = 0
    for block in res:
        for row in block.tolist():
            i = order[k]
            k += 1
            toks = []
            for t in row[: budgets[i]]:
                if t in eos:
                    break
                toks.append(t)
            n += len(toks)
            gen_ids[gen[i]["item_id"]] = toks
            texts[gen[i]["item_id"]] = tok.decode(toks, skip_special_tokens=True)
    cl_texts = {s["item_id"]: s["response"].get("text") for s in gen}
    same = sum(texts.get(k) == v for k, v in cl_texts.items())
    out["generate"] = {
        "items": len(gids),
        "tokens": n,
        "seconds": secs,
        "tok_per_s": n / secs if secs else 0.0,
        "batches": len(batches),
        "identical_to_culturelens": same / max(len(cl_texts), 1),
    }
    tokens["generate"] = [
        {
            "id": s["item_id"],
            "ids": x,
            "max_tokens": m,
            "hf_text": s["response"].get("text"),
            "hf_ids": gen_ids.get(s["item_id"]),
        }
        for s, x, m in zip(gen, gids, budgets, strict=True)
    ]
    be.close()
    args.tokens.write_text(json.dumps(tokens))
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
