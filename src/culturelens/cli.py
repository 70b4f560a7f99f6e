"""Command line: ``culturelens run | tasks | compare | report``."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand

from culturelens import console as out
from culturelens.schema import Mode

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Measure cultural competence of language models."
)
err = Console(stderr=True)


def fail(message: str) -> None:
    """One-line error, exit code 2 (secrets masked)."""
    from rich.markup import escape

    from culturelens.redact import redact

    line = " ".join(redact(str(message)).split())
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so a run stops the way Ctrl-C stops it."""


@contextlib.contextmanager
def _interruptible(runner: object) -> Iterator[None]:
    """Ctrl-C / SIGTERM: say what was kept and how to resume, exit 130 / 143 (no traceback)."""
    import signal

    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except (KeyboardInterrupt, Terminated) as exc:
        code = 143 if isinstance(exc, Terminated) else 130
        st = getattr(runner, "state", None)
        kept = (
            f"{st.computed} newly computed answers are kept in the response cache {st.cache}"
            if st is not None and st.cache is not None
            else "nothing was computed yet"
        )
        where = f" into {st.run_dir}" if st is not None and st.run_dir is not None else ""
        err.print(
            f"interrupted: {kept}; run the same command again to resume{where}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=code) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input (data, model, country, variant, option) ends the command with one clear line."""
    from culturelens.countries import UnknownCountryError
    from culturelens.errors import BackendError, DatasetError, RenderError, SweepError

    try:
        yield
    except (
        KeyError,
        ValueError,
        FileNotFoundError,
        OSError,
        DatasetError,
        BackendError,
        UnknownCountryError,
        SweepError,
        RenderError,
    ) as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))


def _parse_opt(kv: str, flag: str, allow_target: bool = True) -> tuple[str | None, str, str]:
    """``KEY=VALUE`` or ``TARGET:KEY=VALUE`` -> (target, key, value)."""
    lhs, sep, value = kv.partition("=")
    target, colon, key = lhs.rpartition(":") if allow_target else ("", "", lhs)
    key = key.strip()
    if not sep or not key or (colon and not target.strip()):
        fail(f"{flag} {kv!r}: expected KEY=VALUE" + (" or TASK:KEY=VALUE" if allow_target else ""))
    return (target.strip() or None), key, value.strip()


def _literal(value: str) -> object:
    """Options are typed: ints, floats and booleans are converted, the rest stays text."""
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


class _ModelHelp(TyperCommand):
    """A command whose ``--model`` help lists the registered backends, read from the registry only
    when the help is shown (discovery imports other packages' backends)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from rich.markup import escape

        from culturelens.backends.registry import model_help

        for param in self.params:
            if param.name == "model":
                param.help = escape(model_help())  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


@app.command(cls=_ModelHelp)
def run(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="PREFIX:SPEC of a registered backend, or default"),
    ] = "default",
    task: Annotated[
        list[str],
        typer.Option(
            "--task", "-t", help="task name or spec file (.yaml/.toml; repeatable); see `culturelens tasks`"
        ),
    ] = ["starter"],  # noqa: B006
    mode: Annotated[
        Mode | None, typer.Option(help="letter | cloze | generate (default: each task's own)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="at most N items per task (balanced across each task's strata)")
    ] = None,
    limit_mode: Annotated[
        str | None,
        typer.Option(
            "--limit-mode", help="how --limit picks: stratified (default, seeded) | first (file order)"
        ),
    ] = None,
    countries: Annotated[str | None, typer.Option(help="comma-separated countries to keep")] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out", help="run directory (default runs/<run-id>)")
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="local copy of the dataset release")
    ] = None,
    vary: Annotated[
        list[str],
        typer.Option("--vary", help="sweep factors, e.g. option_order=rotate labels=letters,numbers"),
    ] = [],  # noqa: B006
    sample: Annotated[
        int | None, typer.Option(help="seeded sample of N variants from the sweep design")
    ] = None,
    persona: Annotated[
        str | None, typer.Option(help="persona for every prompt, e.g. typical:Japan or typical:@item")
    ] = None,
    cache: Annotated[str | None, typer.Option(help="response cache file (SQLite)")] = None,
    batch_size: Annotated[int, typer.Option(help="requests per backend batch")] = 16,
    executor: Annotated[
        str,
        typer.Option(
            help="where requests are computed: local | ray (a local Ray cluster) | ray:ADDRESS "
            "(ray:auto, ray://HOST:10001); results and cache are the same either way",
        ),
    ] = "local",
    workers: Annotated[int, typer.Option(help="backend replicas with --executor ray (one per GPU...)")] = 1,
    worker_gpus: Annotated[
        float, typer.Option("--worker-gpus", help="GPUs each Ray worker reserves (e.g. 1)")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="seed for permutations, sampling and bootstrap")] = 0,
    opt: Annotated[
        list[str],
        typer.Option(
            "--opt",
            help="task option KEY=VALUE for every task, or TASK:KEY=VALUE (e.g. normad:levels=none,country)",
        ),
    ] = [],  # noqa: B006
    model_opt: Annotated[
        list[str],
        typer.Option("--model-opt", help="backend option KEY=VALUE (e.g. n_ctx=4096, batch_size=32)"),
    ] = [],  # noqa: B006
    judge: Annotated[
        list[str],
        typer.Option(
            "--judge",
            help="judge for judged tasks (care, calmqa, civics): a --model spec; repeat or comma-separate "
            "for a panel (default: the embedded model, a weak judge)",
        ),
    ] = [],  # noqa: B006
    judge_opt: Annotated[
        list[str], typer.Option("--judge-opt", help="backend option KEY=VALUE for the judges")
    ] = [],  # noqa: B006
    report: Annotated[bool, typer.Option(help="write report.html into the run directory")] = True,
    log_to: Annotated[
        list[str],
        typer.Option(
            "--log-to",
            help="also log metrics, config and report to mlflow | wandb (repeatable; "
            "pip install 'culturelens[tracking]')",
        ),
    ] = [],  # noqa: B006
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    more_vary: Annotated[
        list[str] | None, typer.Argument(hidden=True, help="further FACTOR=LEVELS after --vary")
    ] = None,
) -> None:
    """Evaluate a model on tasks; writes config.json, samples.jsonl, results.json (and a report)."""
    if more_vary:  # `--vary option_order=rotate labels=letters,numbers`: the shell splits the design in words
        if not vary:
            fail(f"unexpected argument {more_vary[0]!r} (sweep factors go after --vary)")
        vary = [*vary, *more_vary]
    from culturelens.runner import RunConfig, Runner
    from culturelens.schema import Variant
    from culturelens.sweep import expand
    from culturelens.tasks.base import get_task

    task_options: dict[str, dict[str, object]] = {name: {} for name in task}
    for kv in opt:
        target, key, value = _parse_opt(kv, "--opt")
        if target and target not in task_options:
            fail(f"--opt {kv!r}: task {target!r} is not in this run ({', '.join(task)})")
        names = [target] if target else task
        if not target and len(task) > 1:  # an untargeted option goes to the tasks that declare it
            with _user_errors():
                from culturelens.tasks.base import task_class

                names = [n for n in task if key in task_class(n).option_schema()] or list(task)
        for name in names:
            task_options[name][key] = _literal(value)
    if limit_mode is not None:
        if limit_mode not in ("stratified", "first"):
            fail(f"--limit-mode {limit_mode!r}: use stratified or first")
        for name in task:
            task_options[name]["limit_mode"] = limit_mode
    backend_options = {k: _literal(v) for _, k, v in (_parse_opt(kv, "--model-opt") for kv in model_opt)}
    if limit is not None and limit < 1:
        fail(f"--limit {limit}: give a positive number of items (or leave it out)")
    if batch_size < 1:
        fail(f"--batch-size {batch_size}: give a positive number")
    if log_to:  # a missing tracker package stops the command before anything is computed
        from culturelens.tracking import parse_targets, require

        with _user_errors():
            log_to = parse_targets(log_to)
            require(log_to)
    # the command that re-creates exactly this run (the report's "reproduce" line)
    command = ["culturelens", "run", "--model", model]
    for name in task:
        command += ["--task", name]
    flags: list[tuple[str, object]] = [
        ("--mode", mode.value if mode else None),
        ("--limit", limit),
        ("--limit-mode", limit_mode),
        ("--countries", countries),
        ("--data-dir", data_dir),
        ("--persona", persona),
        ("--sample", sample),
        ("--seed", seed or None),
    ]
    for flag, given in flags:
        if given is not None:
            command += [flag, str(given)]
    for v in vary:
        command += ["--vary", v]
    for kv in opt:
        command += ["--opt", kv]
    for kv in model_opt:
        command += ["--model-opt", kv]
    for j in judge:
        command += ["--judge", j]
    for kv in judge_opt:
        command += ["--judge-opt", kv]
    judge_options = {k: _literal(v) for _, k, v in (_parse_opt(kv, "--judge-opt") for kv in judge_opt)}
    with _user_errors():
        for name in task:
            get_task(name, data_dir=data_dir, **task_options[name])
        base = Variant(persona=persona) if persona else Variant()
        variants = expand(vary, base=base, sample=sample, seed=seed)
        cfg = RunConfig(
            model=model,
            tasks=list(task),
            mode=mode,
            limit=limit,
            countries=[c.strip() for c in countries.split(",")] if countries else None,
            variants=variants,
            data_dir=data_dir,
            out=out_dir,
            cache=cache,
            batch_size=batch_size,
            executor=executor,
            workers=workers,
            worker_gpus=worker_gpus,
            seed=seed,
            task_options={k: v for k, v in task_options.items() if v},
            backend_options=backend_options,
            judges=[p.strip() for j in judge for p in j.split(",") if p.strip()],
            judge_options=judge_options,
            command=command,
        )
        with out.progress(quiet) as progress:
            runner = Runner(cfg, progress=progress, hold_lock=True)
            with _interruptible(runner):
                result = runner.run()
    try:
        with _user_errors():
            _finish_run(result, report, quiet)
            if log_to:
                from culturelens.tracking import log_run

                for target, where in log_run(result.run_dir, log_to).items():
                    out.console.print(f"{target}: [bold]{where}[/]", highlight=False, soft_wrap=True)
    finally:
        result.release()


def _finish_run(result: object, report: bool, quiet: bool) -> None:
    """Console summary, analyses and report of a run, written while its directory is still locked."""
    from culturelens.runner import RunResult

    assert isinstance(result, RunResult)
    if not quiet:
        out.print_results(result.results, result.timing)
    for name, entry in result.results.get("tasks", {}).items():
        fb = entry.get("fallbacks")
        if fb:
            why = "; ".join(f"{r} ({n})" for r, n in fb["reasons"].items())
            err.print(
                f"[yellow]warning:[/] {name}: {fb['n']} answers were not produced as the mode asks: {why}",
                highlight=False,
                soft_wrap=True,
            )
        judge = entry.get("judge")
        if judge:  # a judged score is read with its judge's reliability
            weak = (
                " (the embedded judge is a smoke test, not a grader: see README, Judges)"
                if judge.get("weak_judge")
                else ""
            )
            err.print(
                f"[yellow]judge:[/] {name}: {judge['verdict']}; {judge['invalid']} of {judge['verdicts']} verdicts "
                f"unreadable{weak}",
                highlight=False,
                soft_wrap=True,
            )
    from culturelens.api import finish

    done = finish(result, report=report)  # the same step as the Python API's run()
    if done.robustness is not None and not quiet:
        out.print_robustness(done.robustness)
    if done.alignment and not quiet:
        out.print_alignment(done.alignment)
    if done.report is not None:
        out.console.print(f"report: [bold]{done.report}[/]")
    out.console.print(f"results: [bold]{result.run_dir / 'results.json'}[/]")


def _task_rows(data_dir: str | None) -> list[dict]:
    from culturelens.tasks.base import get_task, task_names

    rows: list[dict] = []
    for name in task_names():
        t = get_task(name, data_dir=data_dir)
        try:
            items = t.items()
            countries = sorted({i.country.name for i in items if i.country})
            rows.append(
                {"task": name, "items": len(items), "countries": countries, "description": t.description}
            )
        except Exception as exc:  # noqa: BLE001 - data not available: still list the task
            rows.append(
                {"task": name, "items": None, "countries": [], "description": t.description, "note": str(exc)}
            )
    return rows


def _task_details(name: str, data_dir: str | None) -> dict:
    """What a task declares, plus where its data were found and its subsets (when the data are there)."""
    from collections import Counter

    from culturelens.tasks.base import get_task, task_class

    info = task_class(name).declaration()
    t = get_task(name, data_dir=data_dir)
    info["data_dir"] = {"path": str(t.data_dir), "given_by": t.data_from} if t.data_dir else None
    try:
        items = t.items()
    except Exception as exc:  # noqa: BLE001 - data not available: still describe the task
        from culturelens.tasks.spec import SpecError

        if isinstance(exc, SpecError):  # a spec's own mistake (a column not in its data) is an error
            raise
        info.update(items=None, subsets=None, note=str(exc))
        return info
    subsets: dict[str, Counter[str]] = {}
    for it in items:
        for key, value in it.subset.items():
            subsets.setdefault(key, Counter())[value] += 1
    info.update(items=len(items), subsets={k: dict(sorted(c.items())) for k, c in sorted(subsets.items())})
    return info


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _print_details(d: dict) -> None:
    """The declaration as plain lines (no markup: help texts hold brackets)."""
    head = d["headline"]
    lines = [f"{d['name']}: {d['description']}", "", f"protocol: {d['protocol'] or '-'}"]
    lines.append(f"mode: {d['mode']} · default template: {d['default_template']}")
    lines += ["", "metrics:"]
    lines.append(f"  * {head['metric']}: {head['label']} (headline; {head['direction']})")
    lines += [f"    {m}: {text}" for m, text in d["metrics"].items() if m != head["metric"]]
    lines += ["", "options (--opt KEY=VALUE):"]
    own = [o for o in d["options"] if o["name"] not in ("limit_mode", "limit_seed")]
    for o in own + [o for o in d["options"] if o not in own]:
        lines.append(f"  {o['name']} ({o['type']}, default {_shown(o['default'])}): {o['help']}")
    lines += ["", "subsets:"]
    if d.get("subsets") is None:
        lines.append(f"  shown when the data are available ({(d.get('note') or '')[:160]})")
    else:
        lines.append(f"  {d['items']} items" + ("" if d["subsets"] else "; no subsets"))
        for key, counts in d["subsets"].items():
            shown = ", ".join(f"{v} ({n})" for v, n in list(counts.items())[:12])
            lines.append(f"  {key}: {shown}{', ...' if len(counts) > 12 else ''}")
    src = d.get("source")
    lines += ["", "data:"]
    if src is None:
        lines.append("  built in")
    else:
        lines.append(f"  release: {src['release']}" + (f" ({src['url']})" if src["url"] else ""))
        where = ["--data-dir"] + ([f"${src['env']}"] if src["env"] else [])
        where += [f"$CULTURELENS_DATA/{src['folder']}"] if src["folder"] else []
        if d.get("spec"):  # a spec names its own data file
            lines.append(f"  spec: {d['spec']['file']} (SHA-256 {d['spec']['sha256'][:12]})")
        else:
            lines.append(f"  local copy: {', '.join(where)} (first given)")
        if src["files"]:
            lines.append(f"  looked for inside it: {', '.join(src['files'])}")
    found = d.get("data_dir")
    lines.append(f"  here: {found['path']} (from {found['given_by']})" if found else "  here: no local copy")
    if d.get("survey"):
        sv = d["survey"]
        lines += [
            "",
            f"survey: {sv['kind']} (alignment metric: {sv['alignment_metric'] or 'the first available'})",
        ]
    print("\n".join(lines))


@app.command()
def tasks(
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="dataset folder for tasks that need one")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    details: Annotated[
        str | None,
        typer.Option(
            "--details",
            metavar="TASK",
            help="everything one task (or spec file) declares: options, subsets, metrics, data, protocol",
        ),
    ] = None,
) -> None:
    """List tasks with item counts and countries (counts need the data to be available)."""
    import os

    if details is not None:
        from culturelens.tasks.base import task_class

        try:
            task_class(details)  # a name, or a spec file (culturelens.tasks.spec)
        except (KeyError, ValueError) as exc:
            fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    # listing never downloads: tasks whose data is neither local nor cached say so
    previous = os.environ.get("CULTURELENS_OFFLINE")
    os.environ["CULTURELENS_OFFLINE"] = "1"
    try:
        with _user_errors():
            rows = _task_details(details, data_dir) if details is not None else _task_rows(data_dir)
    finally:
        if previous is None:
            os.environ.pop("CULTURELENS_OFFLINE", None)
        else:
            os.environ["CULTURELENS_OFFLINE"] = previous
    if as_json:
        print(json.dumps(rows, indent=1))
    elif isinstance(rows, dict):
        _print_details(rows)
    else:
        out.print_tasks(rows)


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="first run directory")],
    run_b: Annotated[Path, typer.Argument(help="second run directory")],
    out_file: Annotated[Path | None, typer.Option("--out", help="write comparison JSON here")] = None,
) -> None:
    """Paired comparison of two runs on their shared items."""
    from culturelens.compare import compare_runs

    with _user_errors():
        res = compare_runs(run_a, run_b)
    out.print_comparison(res)
    if out_file:
        out_file.write_text(json.dumps(res, indent=1))


@app.command()
def crosslingual(
    run_dir: Annotated[Path, typer.Argument(help="a run directory with a blend task")],
    prompt: Annotated[
        list[str], typer.Option("--prompt", help="keep these BLEnD prompt ids (repeatable; default: all)")
    ] = [],  # noqa: B006
    variant: Annotated[str | None, typer.Option(help="variant id (default: the run's first)")] = None,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="also write the analysis JSON here (always: RUN/crosslingual.json)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of the table")] = False,
) -> None:
    """BLEnD cross-lingual consistency: local-language vs English answers per region, with CIs
    (written to RUN/crosslingual.json, which `culturelens report RUN` shows)."""
    from culturelens.crosslingual import analyze, format_table

    with _user_errors():
        res = analyze(run_dir, variant=variant, prompts=prompt or None)
    print(json.dumps(res, indent=1, ensure_ascii=False) if as_json else format_table(res))
    text = json.dumps(res, indent=1, ensure_ascii=False)
    # beside the run like its other analyses (the report's Translation section reads it; a
    # recomputed run removes it with them)
    (run_dir / "crosslingual.json").write_text(text, encoding="utf-8")
    if out_file:
        out_file.write_text(text, encoding="utf-8")


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="one or more run directories")],
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("report.html"),
) -> None:
    """Build one self-contained HTML report for one run or a side-by-side comparison."""
    from culturelens.report import build_report

    with _user_errors():
        path = build_report(runs, output)
    out.console.print(f"report: [bold]{path}[/]")


@app.command()
def export(
    runs: Annotated[list[Path], typer.Argument(help="one or more run directories")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="md | markdown | csv: the results table; parquet | csv with --out-dir: the tidy results "
            "and samples tables as files; eee: Every Eval Ever records; inspect: inspect_ai .eval logs",
        ),
    ] = "md",
    by: Annotated[
        str | None, typer.Option("--by", help="also one row per group: country | region | language | topic")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write here (default: stdout)")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            "-d",
            help="folder for parquet / csv tables (default with one run: the run directory) or eee "
            "records (default: RUN/eee)",
        ),
    ] = None,
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="eee: the model as ORG/NAME (default: inferred)")
    ] = None,
) -> None:
    """Results table for papers and READMEs: score, CI, n, baselines and the verdict against chance;
    or the run as tidy parquet / CSV tables (culturelens.frames) or Every Eval Ever records."""
    fmt = {"markdown": "md"}.get(fmt, fmt)
    if fmt == "inspect":  # inspect_ai .eval logs, one per task (culturelens.interop.inspect_log)
        from culturelens.interop.inspect_log import write_inspect_logs

        with _user_errors():
            for run_dir in runs:
                for path in write_inspect_logs(run_dir, out_dir):
                    out.console.print(f"inspect log: [bold]{path}[/] ({path.stat().st_size:,} bytes)")
        return
    if fmt == "parquet" or fmt == "eee" or (fmt == "csv" and out_dir is not None):
        _export_files(runs, fmt, out_dir, model_id)
        return
    if fmt not in ("md", "csv"):
        fail(
            f"--format {fmt!r}: use md or csv (a table), or parquet, csv --out-dir DIR, eee, inspect (files)"
        )
    from culturelens.export import export as make_table

    with _user_errors():
        text = make_table(runs, fmt=fmt, by=by)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        out.console.print(f"table: [bold]{output}[/]")


def _export_files(runs: list[Path], fmt: str, out_dir: Path | None, model_id: str | None) -> None:
    """``export --format parquet | csv --out-dir | eee``: files, one line per file written."""
    if out_dir is None and len(runs) > 1 and fmt != "eee":  # eee: each run's own RUN/eee
        fail(f"--format {fmt} of {len(runs)} runs: give the folder to write with --out-dir")
    with _user_errors():
        if fmt == "eee":
            from culturelens.eee import write_eee

            paths = []
            for run_dir in runs:
                paths += write_eee(run_dir, out_dir or Path(run_dir) / "eee", model=model_id)
        else:
            from culturelens.frames import write_tables

            tables = write_tables(runs, out_dir or runs[0], fmt="csv" if fmt == "csv" else "parquet")
            paths = list(tables.values())
    for path in paths:
        out.console.print(f"{fmt}: [bold]{path}[/]", highlight=False, soft_wrap=True)


@app.command()
def push(
    runs: Annotated[list[Path], typer.Argument(help="one or more run directories")],
    repo: Annotated[str, typer.Option("--repo", help="Hugging Face dataset repository, OWNER/NAME")],
    private: Annotated[bool, typer.Option(help="create the repository private")] = False,
) -> None:
    """Upload runs' results and samples (parquet) as a Hugging Face Hub dataset (token: HF_TOKEN)."""
    from culturelens.hub import push as push_runs

    with _user_errors():
        done = push_runs(runs, repo, private=private)
    out.console.print(
        f"pushed {len(done['files'])} files: [bold]{done['url']}[/]", highlight=False, soft_wrap=True
    )


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="lm-eval samples_<task>_<date>.jsonl(.gz) files, or inspect .eval / .json logs"),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="the culturelens run directory to write")],
    task: Annotated[
        str | None,
        typer.Option("--task", "-t", help="the culturelens task the log ran (default: inferred when known)"),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="culturelens's copy of the task's dataset release")
    ] = None,
    opt: Annotated[
        list[str], typer.Option("--opt", help="task option KEY=VALUE, as for `culturelens run`")
    ] = [],  # noqa: B006
    model: Annotated[
        str | None, typer.Option("--model-name", help="the model's name (default: from the log)")
    ] = None,
    report: Annotated[bool, typer.Option(help="write report.html into the run directory")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Re-score another harness's log (lm-eval samples, inspect logs) as a culturelens run: the task's
    own scorer, breakdowns with intervals, baselines, robustness across the log's prompts, report."""
    kinds = {
        "lm-eval"
        if f.name.endswith((".jsonl", ".jsonl.gz"))
        else "inspect"
        if f.suffix in (".eval", ".json")
        else "?"
        for f in files
    }
    if "?" in kinds or len(kinds) != 1:
        fail(
            "culturelens import: give lm-eval samples_*.jsonl files or inspect .eval / .json logs, not both "
            f"({', '.join(f.name for f in files)})"
        )
    options = {k: _literal(v) for _, k, v in (_parse_opt(kv, "--opt", allow_target=False) for kv in opt)}
    command = ["culturelens", "import", *map(str, files), "--out", str(out_dir)]
    if task:
        command += ["--task", task]
    with _user_errors():
        if kinds == {"lm-eval"}:
            from culturelens.interop.lmeval import import_lmeval as importer
        else:
            from culturelens.interop.inspect_import import import_inspect as importer
        result = importer(
            files, out_dir, task=task, data_dir=data_dir, task_options=options, model=model, command=command
        )
    for name, entry in result.results.get("tasks", {}).items():
        foreign = entry.get("foreign") or {}
        for note in [(foreign.get("scored_not_shown") or {}).get("note")]:
            if note:
                err.print(f"[yellow]warning:[/] {name}: {note}", highlight=False, soft_wrap=True)
        if foreign.get("prompt_not_logged"):
            err.print(
                f"[yellow]warning:[/] {name}: {foreign['prompt_not_logged']} answers come without their prompt: "
                "options are taken in the dataset's order and which were shown is unknown",
                highlight=False,
                soft_wrap=True,
            )
        if foreign.get("gold_disagrees"):
            err.print(
                f"[yellow]warning:[/] {name}: the log's target differs from culturelens's gold on "
                f"{foreign['gold_disagrees']} answers (scored against culturelens's gold)",
                highlight=False,
                soft_wrap=True,
            )
    with _user_errors():
        _finish_run(result, report, quiet)


@app.command()
def steer(
    countries: Annotated[str, typer.Option(help="comma-separated target countries, e.g. Japan,Brazil,Kenya")],
    task: Annotated[str, typer.Option("--task", "-t", help="survey task: opinions | vsm | wvb")] = "opinions",
    styles: Annotated[
        str,
        typer.Option(
            help="steering styles: typical, anthropological, alkhamissi (the RnR paper's), language"
        ),
    ] = "typical,anthropological",
    model: Annotated[str, typer.Option("--model", "-m", help="as for `culturelens run`")] = "default",
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="local copy of the dataset release")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="at most N items")] = None,
    vary: Annotated[
        list[str], typer.Option("--vary", help="presentation variants averaged out (debiasing)")
    ] = ["option_order=identity,reversed"],  # noqa: B006
    opt: Annotated[
        list[str], typer.Option("--opt", help="task option KEY=VALUE (e.g. wvs_file=..., source=stability)")
    ] = [],  # noqa: B006
    out_dir: Annotated[
        str | None, typer.Option("--out", help="run directory (default runs/<run-id>)")
    ] = None,
    cache: Annotated[str | None, typer.Option(help="response cache file (SQLite)")] = None,
    ivs_dir: Annotated[
        str | None,
        typer.Option("--ivs-dir", help="IVS country-level folder: Inglehart-Welzel map of nearest countries"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed for permutations and bootstrap")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Steering sweep: unsteered + each style toward each country; gain and specificity with CIs."""
    from culturelens.api import steer as run_steer

    options = {}
    for kv in opt:
        _, key, value = _parse_opt(kv, "--opt", allow_target=False)
        options[key] = value
    with _user_errors(), out.progress(quiet) as progress:
        done, design = run_steer(
            task,
            [c.strip() for c in countries.split(",") if c.strip()],
            [s.strip() for s in styles.split(",") if s.strip()],
            vary=vary,
            model=model,
            data_dir=data_dir,
            limit=limit,
            out=out_dir,
            cache=cache,
            task_options=options,
            seed=seed,
            progress=progress,
            ivs_dir=ivs_dir,
        )
    if not quiet:
        out.print_alignment(done.alignment or {})
        for cond, why in design.skipped.items():
            out.console.print(f"[yellow]skipped {cond}: {why}[/]")
    out.console.print(f"alignment: [bold]{done.run_dir / 'alignment.json'}[/]")


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Bundled models (installed or not), dequantised transformers copies and native-probe verdicts."""
    from culturelens.modelinfo import list_models

    rows = list_models()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    table = Table("model", "how to use it", "status", "where", box=None, pad_edge=False)
    for r in rows:
        table.add_row(r["name"], r["spec"], r["status"], r.get("path") or "")
    out.console.print(table)


@app.command()
def runs(
    root: Annotated[Path, typer.Argument(help="folder holding run directories")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Past runs under ROOT: model, tasks, headline with its interval, date and status."""
    from culturelens.modelinfo import list_runs

    rows = list_runs(root)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        out.console.print(f"no runs under {root}")
        return
    from rich.table import Table

    table = Table("run", "model", "task", "headline", "n", "date", "status", box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            r["run"], r["model"], r["task"], r["headline"], str(r["n"] or ""), r["date"], r["status"]
        )
    out.console.print(table)


@app.command()
def improve(
    task: Annotated[str, typer.Option("--task", "-t", help="multiple-choice task to improve on")] = "starter",
    method: Annotated[str, typer.Option(help="dpo | orpo (preference pairs) | sft (gold answers)")] = "dpo",
    steps: Annotated[int, typer.Option(help="optimisation steps")] = 60,
    model: Annotated[
        str, typer.Option("--model", "-m", help="hf:ID_OR_PATH, or default (the embedded model via hf)")
    ] = "hf:embedded",
    out_dir: Annotated[str, typer.Option("--out", help="output directory")] = "runs/improve",
    source_run: Annotated[
        str | None, typer.Option("--source-run", help="a finished run whose failures give the data")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="at most N items of the task")] = None,
    countries: Annotated[str | None, typer.Option(help="comma-separated countries to keep")] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="local copy of the task's release")
    ] = None,
    vary: Annotated[
        list[str],
        typer.Option("--vary", help="evaluation sweep (default option_order=rotate labels=letters,numbers)"),
    ] = [],  # noqa: B006
    holdout_countries: Annotated[
        str, typer.Option("--holdout-countries", help="N countries drawn by seed, or a comma-separated list")
    ] = "3",
    test_fraction: Annotated[float, typer.Option(help="share of each country's item groups held out")] = 0.3,
    transfer: Annotated[
        str, typer.Option(help="benchmark of the same kind to check transfer on, or none")
    ] = "culturalbench_easy",
    transfer_limit: Annotated[int, typer.Option(help="items of the transfer benchmark")] = 60,
    control: Annotated[
        str,
        typer.Option(
            help="general control set: gsm8k (reference-solution likelihood), a JSONL path, or none"
        ),
    ] = "gsm8k",
    control_limit: Annotated[int, typer.Option(help="problems of the control set")] = 60,
    learning_rate: Annotated[float, typer.Option("--lr", help="learning rate")] = 5e-4,
    batch_size: Annotated[int, typer.Option(help="examples per optimisation step")] = 4,
    lora_r: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    beta: Annotated[float, typer.Option(help="DPO beta / ORPO lambda")] = 0.1,
    presentations: Annotated[
        str,
        typer.Option(
            help="presentations the pairs are built under: orders (the training presentation's option "
            "orders, position-balanced; default), one, all, or comma-separated variant ids"
        ),
    ] = "orders",
    pairs_per_item: Annotated[int, typer.Option(help="preference pairs per training item")] = 1,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when there is one)")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
    cache: Annotated[str | None, typer.Option(help="response cache file (SQLite)")] = None,
    seed: Annotated[int, typer.Option(help="seed for the split, sampling and training")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    more_vary: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
) -> None:
    """Close the loop: pairs from a run's failures, LoRA fine-tuning (PEFT + TRL), before/after proof."""
    if more_vary:
        if not vary:
            fail(f"unexpected argument {more_vary[0]!r} (sweep factors go after --vary)")
        vary = [*vary, *more_vary]
    held: int | list[str]
    if holdout_countries.strip().isdigit():
        held = int(holdout_countries)
    else:
        held = [c.strip() for c in holdout_countries.split(",") if c.strip()]
    from culturelens.improve.loop import DEFAULT_VARY
    from culturelens.improve.loop import improve as run_improve

    with _user_errors(), out.progress(quiet) as progress:
        done = run_improve(
            task=task,
            model=model,
            method=method,
            steps=steps,
            out=out_dir,
            source_run=source_run,
            limit=limit,
            countries=[c.strip() for c in countries.split(",") if c.strip()] if countries else None,
            data_dir=data_dir,
            vary=vary or list(DEFAULT_VARY),
            holdout_countries=held,
            test_fraction=test_fraction,
            transfer=transfer,
            transfer_limit=transfer_limit,
            control=control,
            control_limit=control_limit,
            learning_rate=learning_rate,
            batch_size=batch_size,
            lora_r=lora_r,
            beta=beta,
            presentations=presentations
            if presentations in ("orders", "one", "all")
            else [p.strip() for p in presentations.split(",") if p.strip()],
            pairs_per_item=pairs_per_item,
            device=device,
            threads=threads,
            cache=cache,
            seed=seed,
            progress=progress,
            log=None if quiet else (lambda m: out.console.print(m, highlight=False, soft_wrap=True)),
        )
    for line in done.summary["verdicts"]:
        out.console.print(f"- {line}", highlight=False, soft_wrap=True)
    out.console.print(f"improve: [bold]{done.out / 'improve.json'}[/], [bold]{done.markdown}[/]")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
