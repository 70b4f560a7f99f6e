"""Run lm-evaluation-harness on exported prompts; called by ``bench/run.py`` inside ``.venv-bench``.

    python bench/lmeval_runner.py DOCS.jsonl MODE OUT.json --gguf FILE [--batch-size N]

``DOCS.jsonl`` rows are ``{"id", "query", "choices", "gold"}`` with the exact prompt text culturelens
sends (chat template already applied) and the exact continuations it scores, so both harnesses
process the same tokens. Writes per-item log-likelihoods and the load / evaluation times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

TASK_YAML = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
"""


def load_hflm(gguf: Path, batch_size: int) -> tuple[Any, float, float, float]:
    """lm-eval's HF model on the GGUF file (fp32, CPU), and the clock before the import, after it and
    after loading (the runners report import and load time apart from evaluation)."""
    t0 = time.perf_counter()
    from lm_eval.models.huggingface import HFLM

    t_import = time.perf_counter()
    lm = HFLM(
        pretrained=str(gguf.parent), gguf_file=gguf.name, device="cpu", dtype="float32", batch_size=batch_size
    )
    return lm, t0, t_import, time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("docs", type=Path)
    ap.add_argument("mode")
    ap.add_argument("out", type=Path)
    ap.add_argument("--gguf", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    lm, t0, t_import, t_load = load_hflm(args.gguf, args.batch_size)
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        name = f"culturelens_bench_{args.mode}"
        (Path(tmp) / f"{name}.yaml").write_text(TASK_YAML.format(name=name, docs=args.docs.resolve()))
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=[name],
            task_manager=TaskManager(include_path=tmp),
            log_samples=True,
            batch_size=args.batch_size,
            num_fewshot=0,
        )
    t_eval = time.perf_counter()
    samples = res["samples"][name]
    per_item = {}
    for s in samples:
        lls = [float(r[0][0]) for r in s["resps"]]
        per_item[s["doc"]["id"]] = lls
    args.out.write_text(
        json.dumps(
            {
                "import_s": t_import - t0,
                "load_s": t_load - t_import,
                "eval_s": t_eval - t_load,
                "acc": res["results"][name].get("acc,none"),
                "loglikelihoods": per_item,
                "version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
            }
        )
    )


if __name__ == "__main__":
    main()
