"""Run lm-evaluation-harness ``generate_until`` on exported prompts; called by ``bench/generate.py``
inside ``.venv-bench``.

    python bench/lmeval_gen_runner.py DOCS.jsonl OUT.json --gguf FILE --max-gen-toks 64 \
        [--until TEXT ...] [--batch-size N]

``DOCS.jsonl`` rows are ``{"id", "query"}`` with the exact prompt text culturelens sent (chat template
already applied). Greedy (``do_sample: false``), ``max_gen_toks`` and ``until`` as given (lm-eval adds
the tokenizer's EOS text to ``until`` itself). Writes each prompt's generated text, the context lm-eval
actually used (to check it is the prompt), and the import / load / evaluation / generation times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from lmeval_runner import load_hflm  # the same script folder, run inside .venv-bench

TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_text: "{{{{query}}}}"
doc_to_target: ""
target_delimiter: ""
generation_kwargs:
  until: {until}
  max_gen_toks: {max_gen_toks}
  do_sample: false
metric_list:
  - metric: exact_match
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("docs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--gguf", type=Path, required=True)
    ap.add_argument("--max-gen-toks", type=int, required=True)
    ap.add_argument("--until", action="append", default=[])
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    lm, t0, t_import, t_load = load_hflm(args.gguf, args.batch_size)
    import lm_eval
    from lm_eval.tasks import TaskManager

    gen_s = 0.0
    inner = lm.generate_until

    def timed_generate_until(requests, *a, **kw):  # the generation itself, without task set-up
        nonlocal gen_s
        t = time.perf_counter()
        try:
            return inner(requests, *a, **kw)
        finally:
            gen_s += time.perf_counter() - t

    lm.generate_until = timed_generate_until  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        name = "culturelens_bench_generate"
        (Path(tmp) / f"{name}.yaml").write_text(
            TASK_YAML.format(
                name=name,
                docs=args.docs.resolve(),
                until=json.dumps(args.until),
                max_gen_toks=args.max_gen_toks,
            )
        )
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=[name],
            task_manager=TaskManager(include_path=tmp),
            log_samples=True,
            batch_size=args.batch_size,
            num_fewshot=0,
        )
    t_eval = time.perf_counter()
    texts, contexts = {}, {}
    for s in res["samples"][name]:
        texts[s["doc"]["id"]] = s["resps"][0][0]
        contexts[s["doc"]["id"]] = s["arguments"][0][0]
    args.out.write_text(
        json.dumps(
            {
                "import_s": t_import - t0,
                "load_s": t_load - t_import,
                "eval_s": t_eval - t_load,
                "generate_s": gen_s,
                "texts": texts,
                "contexts": contexts,
                "version": getattr(lm_eval, "__version__", None),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
