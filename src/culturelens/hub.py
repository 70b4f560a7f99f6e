"""``culturelens push RUN --repo ORG/NAME``: a run's tables as a Hugging Face Hub dataset.

One commit uploads, per run::

    runs/<run name>/results.parquet   the tidy results (culturelens.frames.load_runs)
    runs/<run name>/samples.parquet   one row per scored prompt (culturelens.frames.samples_df)
    runs/<run name>/results.json      the aggregates as the run wrote them
    runs/<run name>/config.json       the run's config (credentials already masked in the run)

and, when the repository has no ``README.md`` yet, a dataset card whose ``configs`` make the Hub's
viewer and ``datasets.load_dataset(repo, "results")`` / ``(repo, "samples")`` read every pushed run.
The repository is created (as a dataset, private with ``private=True``) if it does not exist. The
token is huggingface_hub's own: ``HF_TOKEN`` or ``hf auth login``.

Tested only against a stubbed transport (``tests/test_push.py`` replaces ``HfApi.create_repo``,
``file_exists`` and ``upload_folder``): this project has no network access to the Hub, so the real
upload path is huggingface_hub's and is not exercised here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturelens.runlog import RunLog, read_run

CARD = """---
configs:
- config_name: results
  data_files: "runs/*/results.parquet"
  default: true
- config_name: samples
  data_files: "runs/*/samples.parquet"
tags:
- culturelens
- evaluation
---
# culturelens runs

Evaluation runs made with [culturelens](https://pypi.org/project/culturelens/), one folder per run
under `runs/`.

- `results`: one row per run x task x variant x breakdown group (country, region, language, topic,
  benchmark subset, or `all`) x metric, with its mean, 95% interval (`ci_low`, `ci_high`, method in
  `ci_method`) and n.
- `samples`: one row per scored prompt: the item, its country and groups, the prompt, the options and
  their probabilities, the answer and its metrics.

```python
from datasets import load_dataset
results = load_dataset("{repo}", "results", split="train").to_pandas()
```
"""
#: files copied from the run directory beside the tables
COPIED = ("results.json", "config.json")


class HubError(ValueError):
    """The push failed (repository, token, network); one line."""


def stage(runs: Sequence[RunLog], folder: Path) -> list[str]:
    """Lay out the runs' files in ``folder``; returns the paths it holds, relative to it."""
    from culturelens.frames import load_runs, samples_df

    files = []
    for log in runs:
        dest = folder / "runs" / log.dir.name
        dest.mkdir(parents=True, exist_ok=True)
        load_runs([log]).to_parquet(dest / "results.parquet", index=False)
        samples_df([log]).to_parquet(dest / "samples.parquet", index=False)
        for name in COPIED:
            if (log.dir / name).is_file():
                shutil.copyfile(log.dir / name, dest / name)
        files += [p.relative_to(folder).as_posix() for p in sorted(dest.iterdir())]
    return files


def push(
    run_dirs: Sequence[str | Path | RunLog],
    repo: str,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> dict[str, Any]:
    """Upload the runs' tables to the dataset repository ``repo`` in one commit; returns
    ``{"url": ..., "files": [...]}``. Raises :class:`HubError` (one line) when the Hub refuses."""
    logs = [d if isinstance(d, RunLog) else read_run(d) for d in run_dirs]
    if not logs:
        raise HubError("push: give at least one run directory")
    names = [log.dir.name for log in logs]
    if len(set(names)) < len(names):
        raise HubError(
            f"push: two runs share the folder name {sorted(n for n in names if names.count(n) > 1)[0]!r}"
        )
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise HubError(f"--repo {repo!r}: give the dataset repository as OWNER/NAME")
    from huggingface_hub import HfApi

    hub = api if api is not None else HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        files = stage(logs, Path(tmp))  # the run logs are read before anything goes to the Hub
        step = "create the repository"
        try:
            hub.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
            step = "look for its README.md"
            if not hub.file_exists(repo, "README.md", repo_type="dataset"):
                (Path(tmp) / "README.md").write_text(CARD.replace("{repo}", repo), encoding="utf-8")
                files.append("README.md")
            step = "upload"
            info = hub.upload_folder(
                repo_id=repo,
                folder_path=tmp,
                repo_type="dataset",
                commit_message=f"culturelens: add {', '.join(names)}"[:200],
            )
        except Exception as exc:  # noqa: BLE001 - whatever the Hub or the network says: one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HubError(
                f"push to {repo}: could not {step} ({type(exc).__name__}: {first[:300]})"
            ) from None
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo}"
    return {"url": str(url), "files": files}
