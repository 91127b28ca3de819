"""The ``clv`` command line: the whole chain (``clv run``) and each stage on its own."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from clv_models import __version__
from clv_models.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from clv_models.importers import ImportResult

console = Console(width=max(Console().width, 120))


def _parse_set(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _config(ctx: click.Context, **overrides) -> Config:
    """The configuration with the group's options and the command's own flags applied."""
    obj = ctx.obj
    merged = {**obj["overrides"], **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return load_config(obj["config_path"], merged)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


class _Group(click.Group):
    """Turns the product's expected failures into one clear message instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from clv_models.features import FeatureStoreError
        from clv_models.warehouse import DbtError

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (DbtError, FeatureStoreError, FileNotFoundError, ValueError, KeyError,
                RuntimeError, OSError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clv")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML configuration file (default: ./clv.yaml when present).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where raw data, the warehouse, features, models and reports live "
                   "(default: ./data).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override any setting, e.g. --set deep.epochs=10 --set horizon_days=90.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, data_dir: Path | None,
         settings: tuple[str, ...]) -> None:
    """Customer lifetime value: dbt on DuckDB -> Feast -> XGBoost + PyTorch -> scores.

    Run `clv run` for the whole chain on a generated shop, or the stages one by one:
    generate, build, features, train, evaluate, score (publish: the copy BI tools read).
    """
    overrides = _parse_set(settings)
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    ctx.obj = {"config_path": config_path, "overrides": overrides}


def _pipeline(cfg: Config):
    from clv_models.pipeline import Pipeline

    return Pipeline(cfg, console=console)


@main.command()
@click.option("--customers", type=int, help="Customers in the generated shop.")
@click.option("--seed", type=int, help="Seed of the generated shop.")
@click.option("--horizon-days", type=int, help="Prediction horizon in days.")
@click.option("--epochs", type=int, help="Maximum epochs of the deep model.")
@click.option("--skip-generate", is_flag=True,
              help="Use the raw data already in DATA_DIR/raw (e.g. from `clv import`).")
@click.pass_context
def run(ctx: click.Context, customers, seed, horizon_days, epochs, skip_generate) -> None:
    """Run the whole chain: generate -> build -> features -> train -> evaluate -> score."""
    cfg = _config(ctx, **{"shop.customers": customers, "shop.seed": seed,
                          "horizon_days": horizon_days, "deep.epochs": epochs})
    _pipeline(cfg).run(generate=not skip_generate)


@main.command()
@click.option("--customers", type=int, help="Number of customers (default 20,000).")
@click.option("--seed", type=int, help="Random seed (same seed and size: same shop).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First day of the shop.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Day after the last day.")
@click.pass_context
def generate(ctx: click.Context, customers, seed, start, end) -> None:
    """Write a synthetic shop (raw tables + ground truth) to DATA_DIR/raw and DATA_DIR/truth."""
    cfg = _config(ctx, **{"shop.customers": customers, "shop.seed": seed,
                          "shop.start": start.date() if start else None,
                          "shop.end": end.date() if end else None})
    p = _pipeline(cfg)
    p.generate()


@main.group("import")
def import_() -> None:
    """Turn public or custom export formats into the raw contract in DATA_DIR/raw.

    Importing replaces the raw tables (and any generated ground truth) in DATA_DIR; then run
    `clv run --skip-generate` with an as-of schedule inside the data (--set as_of.start=...).
    """


def _imported(result: ImportResult) -> None:
    rows = ", ".join(f"{table} {n:,}" for table, n in result.rows.items())
    console.print(f"[green]✓[/green] imported {rows} -> {result.raw_dir}")


@import_.command("cdnow")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_cdnow(ctx: click.Context, path: Path) -> None:
    """CDNOW_master.txt (customer, yyyymmdd, CD count, dollars per line) as orders."""
    from clv_models import importers

    cfg = _config(ctx)
    _imported(importers.import_cdnow(cfg, path))


@import_.command("online-retail")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timezone", default="Europe/London", show_default=True,
              help="Time zone of InvoiceDate.")
@click.pass_context
def import_online_retail(ctx: click.Context, path: Path, timezone: str) -> None:
    """UCI Online Retail (I or II) invoice lines, .xlsx/.csv/.parquet: orders, returns (C
    invoices) and customers."""
    from clv_models import importers

    cfg = _config(ctx)
    _imported(importers.import_online_retail(cfg, path, timezone))


@import_.command("csv")
@click.argument("table", type=click.Choice(["orders", "returns", "page_views", "customers"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=FILE_COLUMN",
              help="Contract column from a differently named file column (repeatable).")
@click.option("--encoding", default="utf-8", show_default=True,
              help="Text encoding of a CSV file (e.g. latin-1, cp1252).")
@click.pass_context
def import_csv(ctx: click.Context, table: str, path: Path, mapping: tuple[str, ...],
               encoding: str) -> None:
    """One raw table from a CSV, Parquet or Excel file, renaming columns with --map.

    Other raw tables already in DATA_DIR/raw are kept, so tables can be imported one by one:
    `clv import csv orders orders.csv --map order_id=OrderNo --map ordered_at=Date ...`.
    Timestamps are ISO-8601 (without an offset: UTC); a malformed line, a value of the wrong
    type or text that is not in the encoding stops the import, naming the line(s).
    """
    from clv_models import importers

    cfg = _config(ctx)
    _imported(importers.import_table(cfg, table, path, _parse_set(mapping), encoding=encoding))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def build(ctx: click.Context, dbt_args: tuple[str, ...]) -> None:
    """`dbt build` of warehouse/ (extra arguments go to dbt, e.g. `clv build --select marts`),
    then publish the scores and BI models to DATA_DIR/bi for BI tools (see `clv publish`)."""
    from clv_models import bi, warehouse

    cfg = _config(ctx)
    if dbt_args:
        result = warehouse.run_dbt(cfg, ["build", *dbt_args], echo=click.echo)
        console.print(f"{result.passed}/{result.nodes_total} nodes ok")
        try:
            console.print(f"published for BI: {bi.publish(cfg).summary()}")
        except bi.PublishError as exc:  # a partial build may leave the BI models behind
            console.print(f"[yellow]not published for BI[/yellow]: {exc}")
    else:
        p = _pipeline(cfg)
        p.build()
        p.publish(refresh=False)


@main.command()
@click.option("--full-refresh", is_flag=True,
              help="Empty the online store and materialize every feature row again.")
@click.pass_context
def features(ctx: click.Context, full_refresh: bool) -> None:
    """Feast apply, then materialize new feature rows into the online store (incremental)."""
    _pipeline(_config(ctx)).features(full_refresh=full_refresh)


@main.command()
@click.option("--epochs", type=int, help="Maximum epochs of the deep model.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
              help="Device of the deep model (auto: CUDA when available).")
@click.pass_context
def train(ctx: click.Context, epochs, device) -> None:
    """Train the reference models (naive, BG/NBD + Gamma-Gamma), XGBoost and the deep model."""
    p = _pipeline(_config(ctx, **{"deep.epochs": epochs, "deep.device": device}))
    p.train()


@main.command()
@click.pass_context
def evaluate(ctx: click.Context) -> None:
    """Evaluate the saved models on the held-out as-of date and write the report.

    The HTML report with its charts lands in DATA_DIR/reports/runs/<run>/index.html, copied to
    DATA_DIR/reports/latest/index.html; evaluation.json and deciles.csv stay in DATA_DIR/reports.
    """
    p = _pipeline(_config(ctx))
    p.evaluate()
    console.print(p.metrics_table())
    console.print(f"Report: [bold]{p.html.latest}[/bold] (this run: {p.html.index})")


@main.command()
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]),
              help="As-of date to score (default: the latest).")
@click.pass_context
def score(ctx: click.Context, as_of) -> None:
    """Score customers with the saved models and write clv_scores to the warehouse."""
    from clv_models import scoring, training

    cfg = _config(ctx)
    models = training.load_models(cfg, training.PRODUCT_MODELS)
    result = scoring.score(cfg, models, as_of=as_of.date() if as_of else None)
    console.print(f"run {result.run_id}: scored {result.rows} at {result.as_of_date} -> "
                  f"{cfg.resolved().warehouse_path}:clv_scores")
    _pipeline(cfg).publish()


@main.command()
@click.option("--skip-dbt", is_flag=True,
              help="Copy the BI models as they are instead of rebuilding them on the scores.")
@click.pass_context
def publish(ctx: click.Context, skip_dbt: bool) -> None:
    """Publish clv_scores and the BI models to DATA_DIR/bi for BI tools, swapped in atomically.

    Rebuilds the dbt models on the scores (dbt build --select source:clv+, data tests
    included), then writes DATA_DIR/bi/clv_bi.duckdb and DATA_DIR/bi/parquet/<table>.parquet
    under temporary names and renames them over the published ones: a BI tool reading them
    sees the previous or the new complete set, and never holds the warehouse's lock. `clv
    build` and `clv score` publish by themselves; README "BI access" says how to connect.
    """
    _pipeline(_config(ctx)).publish(refresh=not skip_dbt)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback needs a token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--model", "model_name", default="deep_ziln", show_default=True,
              type=click.Choice(["deep_ziln", "xgboost", "bgnbd_gg", "naive"]),
              help="The trained model to serve.")
@click.option("--token-env", default="CLV_API_TOKEN", show_default=True,
              help="Environment variable holding the bearer token (at least 16 characters); "
                   "when set, /v1 requests need `Authorization: Bearer <token>`.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log line per request (at log level info); off saves CPU per request.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, model_name: str, token_env: str,
          log_level: str, access_log: bool) -> None:
    """The online CLV endpoint: GET /v1/clv/{customer_id}, POST /v1/clv, GET /health.

    Reads the customers' features from the Feast online store (after `clv features`) and
    predicts with the saved model; OpenAPI schema at /openapi.json, docs at /docs.
    """
    import os

    from clv_models import serve as endpoint

    endpoint.serve(_config(ctx), host=host, port=port, model_name=model_name,
                   token=os.environ.get(token_env) or None, token_env=token_env,
                   log_level=log_level, access_log=access_log, echo=console.print)


@main.command("push-event")
@click.argument("kind", type=click.Choice(["order", "return"]))
@click.argument("customer_id")
@click.argument("amount", type=click.FloatRange(min=0))
@click.option("--at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
                                           "%Y-%m-%d %H:%M:%S"]),
              help="When it happened, UTC (default: now).")
@click.pass_context
def push_event(ctx: click.Context, kind: str, customer_id: str, amount: float, at) -> None:
    """Add a live order (gross total) or return (refund) to a customer's online features.

    The customer's rows go to the online store through the Feast push sources at once; the
    next `clv build` + `clv features` recomputes them exactly (README, "Online serving").
    """
    from clv_models import live

    result = live.push_event(_config(ctx), live.LiveEvent(customer_id, kind, amount, at))
    def fmt(value) -> str:
        return f"{value:,.2f}" if isinstance(value, float) else str(value)

    changes = ", ".join(f"{k} {fmt(result.before[k])} -> {fmt(result.after[k])}"
                        for k in result.before if result.before[k] != result.after[k])
    console.print(f"pushed {kind} of {amount:g} for {customer_id} (features as of "
                  f"{result.as_of:%Y-%m-%d}) to {', '.join(result.views)} in "
                  f"{result.seconds * 1000:.0f} ms: {changes}")


@main.group()
def bench() -> None:
    """Benchmarks (not tests): each prints its table; --json PATH writes the same figures."""


def _print_bench(result, json_path: Path | None) -> None:
    import json

    from rich.table import Table

    table = Table(title=f"clv bench {result.benchmark}")
    for col in ("measure / ratio", "value", "details"):
        table.add_column(col)
    for row in result.rows:
        name = row.get("measure") or row.get("ratio")
        value = row.get("value")
        details = ", ".join(f"{k}={v}" for k, v in row.items()
                            if k not in {"measure", "ratio", "value"})
        table.add_row(name, "" if value is None and "value" not in row else str(value), details)
    console.print(table)
    console.print(f"device: {result.as_json()['device']}")
    if json_path:
        json_path.write_text(json.dumps(result.as_json(), indent=2, default=str))
        console.print(f"wrote {json_path}")


@bench.command("warehouse")
@click.option("--customers", type=int, default=1_000_000, show_default=True,
              help="Customers of the generated shop (generated once, then reused).")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]),
              help="As-of date of the RFM comparison (default: the evaluation date).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.pass_context
def bench_warehouse(ctx: click.Context, customers: int, as_of, json_path: Path | None) -> None:
    """dbt build vs a raw scan, RFM mart vs a hand-written query and vs lifetimes.

    The shop lives in DATA_DIR/bench-warehouse-<customers> unless --data-dir is given.
    """
    from clv_models.bench import bench_warehouse as run_bench

    overrides = {"shop.customers": customers}
    if "data_dir" not in ctx.obj["overrides"]:
        base = _config(ctx).data_dir
        overrides["data_dir"] = base / f"bench-warehouse-{customers}"
    cfg = _config(ctx, **overrides)
    result = run_bench(cfg, as_of.date() if as_of else None, echo=console.print)
    _print_bench(result, json_path)


def _bench_config(ctx: click.Context, name: str, customers: int) -> Config:
    """The configuration of a benchmark's own shop: DATA_DIR/bench-<name>-<customers> unless
    --data-dir is given."""
    from clv_models.bench_models import default_data_dir

    overrides: dict = {"shop.customers": customers}
    if "data_dir" not in ctx.obj["overrides"]:
        overrides["data_dir"] = default_data_dir(_config(ctx), name, customers)
    return _config(ctx, **overrides)


@bench.command("serving")
@click.option("--customers", type=int, default=20_000, show_default=True,
              help="Customers of the shop generated when DATA_DIR holds none.")
@click.option("--store", "stores", type=click.Choice(["sqlite", "redis"]), multiple=True,
              help="Online stores to measure (repeatable; default: sqlite and redis).")
@click.option("--redis-url", help="An existing Redis database to use (the benchmark empties "
                                  "the project's keys there); default: a throw-away "
                                  "redis-server on a free loopback port.")
@click.option("--model", default="deep_ziln", show_default=True,
              type=click.Choice(["deep_ziln", "xgboost", "bgnbd_gg", "naive"]),
              help="The model the CLV endpoint serves.")
@click.option("--requests", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Timed requests per measurement at batch 1.")
@click.option("--batch-requests", type=click.IntRange(min=20), default=300, show_default=True,
              help="Timed requests per measurement at batch 100.")
@click.option("--materialize-dir", type=click.Path(exists=True, file_okay=False,
                                                   path_type=Path),
              help="Feature Parquet exports of a 1M-customer shop (e.g. /tmp/gen1m/features): "
                   "measure their materialization for real instead of extrapolating.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.pass_context
def bench_serving(ctx: click.Context, customers: int, stores: tuple[str, ...],
                  redis_url: str | None, model: str, requests: int, batch_requests: int,
                  materialize_dir: Path | None, json_path: Path | None) -> None:
    """Online latency (Feast SDK, feast serve, clv serve) and materialization per store.

    For SQLite and Redis: materializes the shop's features into a store of its own, then
    measures p50/p99 with load from a second process on loopback: Feast SDK reads of clv_v1
    (56 features) at batch 1 and 100, `feast serve` at batch 1 and 100, the CLV endpoint at
    batch 1 paced at 100 requests/s and at batch 100; and materialization throughput with its
    1M-customer extrapolation. Targets and Feast's published figures are in the table. The shop
    lives in DATA_DIR/bench-serving-<customers> unless --data-dir is given; its chain runs first
    when it has no trained model. Needs redis-server on the PATH unless --redis-url is given.
    """
    import json

    from clv_models.bench_serving import STORES, serving_table
    from clv_models.bench_serving import bench_serving as run_bench

    result = run_bench(_bench_config(ctx, "serving", customers), stores=stores or STORES,
                       redis_url=redis_url, model=model, requests=requests,
                       batch_requests=batch_requests, materialize_dir=materialize_dir,
                       console=console, echo=console.print)
    console.print(serving_table(result))
    console.print(f"device: {result.as_json()['device']}")
    if json_path:
        json_path.write_text(json.dumps(result.as_json(), indent=2, default=str))
        console.print(f"wrote {json_path}")


@bench.command("oracle")
@click.option("--customers", type=int, default=100_000, show_default=True,
              help="Customers of the generated shop (generated once, then reused).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.pass_context
def bench_oracle(ctx: click.Context, customers: int, json_path: Path | None) -> None:
    """Each model's accuracy as a share of the oracle's on a generated shop.

    Runs the whole chain (generate when absent, build, features, train, evaluate) and reports
    every metric per model with its normalized Gini and MAE over the oracle's, and whether
    deep_ziln reaches 0.97 of the oracle's normalized Gini and beats XGBoost. Two more
    references say what is reachable: feature_ceiling (XGBoost fitted to the oracle's values,
    an estimate of the best these features allow) and the Gini of every model within customers
    grouped by their order history. The shop lives in DATA_DIR/bench-oracle-<customers> unless
    --data-dir is given.
    """
    import json

    from clv_models.bench_models import bench_oracle as run_bench
    from clv_models.bench_models import gap_table, oracle_table

    result = run_bench(_bench_config(ctx, "oracle", customers), console=console)
    console.print(oracle_table(result))
    console.print(gap_table(result))
    console.print(f"device: {result.as_json()['device']}")
    if json_path:
        json_path.write_text(json.dumps(result.as_json(), indent=2, default=str))
        console.print(f"wrote {json_path}")


@bench.command("training")
@click.option("--customers", type=int, default=1_000_000, show_default=True,
              help="Customers of the shop generated when DATA_DIR holds none.")
@click.option("--entity-rows", type=int, default=1_000_000, show_default=True,
              help="About this many label rows (whole customers) for the retrieval.")
@click.option("--rows", type=int, default=1_000_000, show_default=True,
              help="Synthetic training rows of the deep-model throughput.")
@click.option("--epochs", type=int, default=2, show_default=True,
              help="Epochs of the deep-model throughput.")
@click.option("--batch-sizes", default="16384", show_default=True,
              help="Comma-separated batch sizes of the deep-model throughput.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="auto: the CPU, and CUDA when present.")
@click.option("--score-customers", type=int, default=1_000_000, show_default=True,
              help="Customers scored end to end (at most the shop's).")
@click.option("--only", type=click.Choice(["retrieval", "deep", "scoring"]), multiple=True,
              help="Run only these measurements (repeatable; default: all three).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.pass_context
def bench_training(ctx: click.Context, customers: int, entity_rows: int, rows: int, epochs: int,
                   batch_sizes: str, device: str, score_customers: int, only: tuple[str, ...],
                   json_path: Path | None) -> None:
    """Training-set retrieval vs an as-of join, deep-model samples/s, batch scoring.

    Feast get_historical_features of the labels' entity rows ÷ one DuckDB ASOF JOIN over the
    same Parquet files (values checked equal); the deep model's training throughput on
    synthetic rows with the 52-week sequences (CPU, and CUDA when present); scoring customers
    end to end into clv_scores, with the stage split. Scoring uses the saved models, or trains
    them on the retrieved rows when there are none (reduce with --set deep.epochs=...). The shop
    lives in DATA_DIR/bench-training-<customers> unless --data-dir is given; it is generated
    and built when absent.
    """
    from clv_models.bench_models import PARTS
    from clv_models.bench_models import bench_training as run_bench

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--batch-sizes") from exc
    cfg = (_config(ctx) if only == ("deep",)
           else _bench_config(ctx, "training", customers))
    result = run_bench(cfg, entity_cap=entity_rows, deep_rows=rows, deep_epochs=epochs,
                       batch_sizes=sizes, device=device, score_customers=score_customers,
                       parts=only or PARTS, echo=console.print)
    _print_bench(result, json_path)


@bench.command("cdnow")
@click.option("--cdnow", "cdnow_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="A local CDNOW_master.txt (default: the copy in the installed lifetimes "
                   "package, pip install 'clv-models[bench]').")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the cross-fitting by customer (xgboost, deep_ziln).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON.")
@click.pass_context
def bench_cdnow(ctx: click.Context, cdnow_path: Path | None, folds: int,
                json_path: Path | None) -> None:
    """Real-data accuracy on CDNOW (DESIGN.md protocol) beside the published reference rows.

    Imports CDNOW_master.txt (clv import cdnow), builds features with dbt and Feast at
    1997-10-01, predicts spend in the 273-day holdout for all 23,570 customers and prints the
    metrics beside DESIGN.md's reference rows. BG/NBD + Gamma-Gamma and naive use calibration
    data only; xgboost and deep_ziln are cross-fitted by customer (each fold predicted by models
    trained on the other folds' customers, with their rows at every month start 1997-02-01 ..
    1997-10-01). A second table transforms the models' predictions to show what Spearman and
    MAE reward on this target. Model settings: the configuration's, with the benchmark's own
    choices for XGBoost (Tweedie power 1.2, depth 3) unless --set gives them. The data live in
    DATA_DIR/bench-cdnow unless --data-dir is given.
    """
    import json

    from clv_models.bench_cdnow import MODEL_SETTINGS, cdnow_table, diagnostics_table
    from clv_models.bench_cdnow import bench_cdnow as run_bench

    given = ctx.obj["overrides"]
    overrides = {k: v for k, v in MODEL_SETTINGS.items() if k not in given}
    if "data_dir" not in given:
        overrides["data_dir"] = _config(ctx).data_dir / "bench-cdnow"
    result = run_bench(_config(ctx, **overrides), cdnow_path, folds=folds, echo=console.print)
    console.print(cdnow_table(result))
    console.print(diagnostics_table(result))
    console.print(f"device: {result.as_json()['device']}; {result.extra['seconds']['total']:.0f} s")
    if json_path:
        json_path.write_text(json.dumps(result.as_json(), indent=2, default=str))
        console.print(f"wrote {json_path}")


@main.command()
@click.option("--section", "sections", multiple=True, metavar="SECTION",
              help="Only these sections (repeatable): raw, warehouse, scores, features, "
                   "online, models, metrics, bi.")
@click.pass_context
def checksum(ctx: click.Context, sections: tuple[str, ...]) -> None:
    """Print checksums of DATA_DIR's tables, features, online store, models and metrics (JSON).

    One per table, file, scored set, feature view and model, independent of row order;
    run-specific columns (scored_at, run_id) and times are left out, so two runs on the same
    input and seed print the same JSON (see clv_models.checksums).
    """
    import json

    from clv_models import checksums

    result = checksums.compute(_config(ctx), sections or checksums.SECTIONS)
    click.echo(json.dumps(result, indent=2, sort_keys=True))


@main.command()
@click.pass_context
def env(ctx: click.Context) -> None:
    """Print shell exports so `dbt` and `feast` can be run by hand: eval "$(clv env)"."""
    import json

    cfg = _config(ctx)
    for key, value in cfg.env().items():
        click.echo(f"export {key}={shlex.quote(value)}")
    click.echo(f"# dbt by hand also needs the schedule: dbt build --profiles-dir . --vars "
               f"{shlex.quote(json.dumps(cfg.dbt_vars()))}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
