"""The end-to-end chain, stage by stage, with progress and a closing summary.

generate -> build (dbt) -> features (Feast apply + materialize) -> train -> evaluate -> score.
Each stage can also run alone (the CLI commands of the same names); they hand over through
files in the data directory, so nothing but the files ties one stage to the next.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clv_models.core.config import Config
from clv_models.evaluation import backtest as backtests
from clv_models.evaluation import champion, evaluation, selection
from clv_models.evaluation.report import (
    METRIC_COLUMNS,
    REFERENCE_NOTE,
    HtmlReport,
    format_metric,
    write_html_report,
)
from clv_models.features import store as features
from clv_models.ingest.generate import generate_shop
from clv_models.models import training
from clv_models.models.deep.estimator import EpochProgress
from clv_models.scoring import score as scoring
from clv_models.warehouse import bi
from clv_models.warehouse import dbt as warehouse


@dataclass
class StageResult:
    """One finished stage: how long it took and what it produced."""

    name: str
    seconds: float
    output: str


@dataclass
class Pipeline:
    """Runs the stages on one configuration and remembers what they produced."""

    cfg: Config
    console: Console = field(default_factory=Console)
    stages: list[StageResult] = field(default_factory=list)
    training_set: training.TrainingSet | None = None
    models: dict | None = None
    report: evaluation.EvaluationReport | None = None
    html: HtmlReport | None = None
    scores: scoring.ScoringResult | None = None
    publication: bi.Publication | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cfg = self.cfg.resolved()

    def _progress(self) -> Progress:
        return Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=self.console, transient=True)

    def _done(self, name: str, start: float, output: str) -> None:
        seconds = time.perf_counter() - start
        self.stages.append(StageResult(name, seconds, output))
        self.console.print(f"[green]✓[/green] {name:<9} {seconds:7.1f} s  {output}")

    # -- stages -------------------------------------------------------------------------------
    def generate(self) -> None:
        start = time.perf_counter()
        shop = self.cfg.shop
        with self._progress() as bar:
            task = bar.add_task("generating customers", total=shop.customers)
            summary = generate_shop(self.cfg, lambda done, _: bar.update(task, completed=done))
        rows = summary.rows
        self._done("generate", start,
                   f"{rows['customers']:,} customers, {rows['orders']:,} orders, "
                   f"{rows['page_views']:,} page views, {rows['returns']:,} returns "
                   f"-> {summary.raw_dir}")

    def build(self) -> None:
        start = time.perf_counter()
        with self._progress() as bar:
            task = bar.add_task("dbt build", total=None)

            def step(done: int, total: int, line: str) -> None:
                bar.update(task, completed=done, total=total)

            result = warehouse.run_dbt(self.cfg, ["build"], progress=step)
        self.counts = warehouse.table_counts(self.cfg)
        c = self.counts
        self._done("build", start,
                   f"{result.passed}/{result.nodes_total} dbt nodes ok; orders "
                   f"{c.get('raw.orders', 0):,} raw = {c.get('stg_raw__orders', 0):,} clean + "
                   f"{c.get('quarantined.orders', 0):,} quarantined; "
                   f"{c.get('customer_rfm', 0):,} feature rows, "
                   f"{c.get('customer_clv_labels', 0):,} label rows")

    def features(self, full_refresh: bool = False) -> None:
        start = time.perf_counter()
        with self.console.status("  feast apply"):
            applied = features.apply(self.cfg)
        with self.console.status("  feast materialize"):
            result = features.materialize(self.cfg, full_refresh=full_refresh)
        loaded = ", ".join(f"{fv} {a:%Y-%m-%d}..{b:%Y-%m-%d}"
                           for fv, (a, b) in result.intervals.items()) or "nothing new"
        self._done("features", start,
                   f"{applied.summary()}; materialized {loaded}; {result.online_rows:,} "
                   "customers online")

    def train(self) -> None:
        start = time.perf_counter()
        with self.console.status("  retrieving the training set through Feast"):
            self.training_set = training.load_training_set(self.cfg)
        data = self.training_set
        s = data.split
        self.console.print(
            f"  training set: {len(data.frame):,} rows x {len(data.feature_names)} features; "
            f"fit {s.fit_dates[0]}..{s.fit_dates[-1]} ({len(data.part('fit')):,} rows), "
            f"validation {s.validation_date}, evaluation {s.evaluation_date}")

        def report(name, model) -> None:
            extra = ""
            if name == "deep_ziln":
                m = model.metadata
                extra = (f" ({m['epochs_run']} epochs on {m['device']}, "
                         f"{m['samples_per_second']:,.0f} samples/s)")
            self.console.print(f"  trained {name} {model.version}{extra}")

        with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[detail]}"), console=self.console,
                      transient=True) as bar:
            task = bar.add_task("training", total=None, detail="")

            def started(name: str) -> None:
                bar.update(task, description=f"training {name}", completed=0, total=None,
                           detail="")

            def epoch(e: EpochProgress) -> None:
                bar.update(task, description="training deep_ziln, epoch", completed=e.epoch,
                           total=e.max_epochs,
                           detail=f"validation loss {e.validation_loss:.4f} (best epoch "
                                  f"{e.best_epoch}), {e.seconds:.0f} s, at most "
                                  f"{e.seconds_left:.0f} s left")

            self.models = training.train(self.cfg, data, on_model=report, on_start=started,
                                         on_epoch=epoch)
        def cutoff(i: int, split: training.Split) -> None:
            self.console.print(f"  choosing the champion: validation cutoff {i + 1} "
                               f"{split.evaluation_date} (refit on {split.fit_dates[0]}.."
                               f"{split.fit_dates[-1]})")

        choice, blend = selection.choose(self.cfg, self.models, data, on_cutoff=cutoff)
        champion.save(self.cfg, data, choice, blend)
        self.models["blend"] = blend
        weights = ", ".join(f"{n} {w:.2f}" for n, w in choice.weights.items() if w > 0)
        self.console.print(f"  blend {blend.version} (weights: {weights or 'none'}); champion "
                           f"{choice.champion} (on {choice.basis})")
        self._done("train", start, f"{len(self.models)} models, champion {choice.champion} "
                                   f"-> {self.cfg.models_dir}")

    def evaluate(self) -> None:
        start = time.perf_counter()
        if self.training_set is None:
            with self.console.status("  retrieving the evaluation set through Feast"):
                self.training_set = training.load_training_set(self.cfg)
        if self.models is None:
            self.models = training.load_models(self.cfg, champion.CANDIDATES)
        choice = champion.load(self.cfg)
        self.report = evaluation.evaluate(self.cfg, self.training_set, self.models,
                                          champion=choice)
        with self.console.status("  drawing the report"):
            self.html = write_html_report(self.report, self.cfg.reports_dir,
                                          attachments=self.report.paths)
        self.report.paths.append(self.html.latest)
        self._done("evaluate", start,
                   f"{self.report.customers:,} customers at {self.report.as_of_date} -> "
                   f"{self.html.latest}")

    def backtest(self, cutoffs: int = 3, bootstrap: int = 200) -> backtests.BacktestResult:
        """Rolling-origin backtest (:mod:`clv_models.evaluation.backtest`), printed and
        written to ``reports/backtest.json``."""
        start = time.perf_counter()
        if self.training_set is None:
            with self.console.status("  retrieving the training set through Feast"):
                self.training_set = training.load_training_set(self.cfg)

        def cutoff(i: int, split: training.Split) -> None:
            self.console.print(f"  cutoff {i + 1}/{cutoffs}: {split.evaluation_date} (fit "
                               f"{split.fit_dates[0]}..{split.fit_dates[-1]}, validation "
                               f"{split.validation_date})")

        result = backtests.run(self.cfg, self.training_set, cutoffs, bootstrap, on_cutoff=cutoff)
        path = backtests.write(self.cfg, result)
        self.console.print(backtest_table(result))
        if (self.cfg.models_dir / champion.CHAMPION_FILE).exists():
            self.evaluate()  # the report shows the backtest beside the evaluation
        self._done("backtest", start, f"{cutoffs} cutoffs, champions "
                   f"{', '.join(c['champion'] for c in result.cutoffs)} -> {path}")
        return result

    def score(self, as_of: dt.date | None = None) -> None:
        start = time.perf_counter()
        models, choice = scoring.scored_models(self.cfg)
        chosen = choice.champion
        if self.models is not None:  # fitted in this run: the same versions as those saved
            models = {n: self.models.get(n, m) for n, m in models.items()}
        with self.console.status("  scoring"):
            self.scores = scoring.score(self.cfg, models, as_of=as_of, champion=chosen,
                                        calibrations=champion.calibrations(choice))
        total = sum(self.scores.rows.values())
        per_model = ", ".join(f"{k} {v:,}" for k, v in self.scores.rows.items())
        self._done("score", start,
                   f"{total:,} rows ({per_model}; champion {chosen}) at "
                   f"{self.scores.as_of_date} -> {self.cfg.warehouse_path}:clv_scores")

    def publish(self, refresh: bool = True) -> None:
        """Publish the scores and the BI models for BI tools (:mod:`clv_models.warehouse.bi`).

        With ``refresh`` the dbt models on the scores are rebuilt (and tested) first, as after
        scoring; after a full ``dbt build`` they are current already.
        """
        start = time.perf_counter()
        with self.console.status("  dbt build of the models on the scores" if refresh
                                 else "  publishing"):
            self.publication = bi.refresh(self.cfg) if refresh else bi.publish(self.cfg)
        self._done("publish", start, self.publication.summary())

    def run(self, generate: bool = True) -> None:
        """All stages in order."""
        if generate:
            self.generate()
        self.build()
        self.features(full_refresh=generate)  # a new shop replaces every customer's rows
        self.train()
        self.evaluate()
        self.score()
        self.publish()
        self.print_summary()

    # -- summary ------------------------------------------------------------------------------
    def metrics_table(self) -> Table:
        assert self.report is not None
        t = Table(title=f"Evaluation at {self.report.as_of_date} ({self.report.customers:,} "
                        f"customers, horizon {self.cfg.horizon_days} days)",
                  caption=REFERENCE_NOTE)
        t.add_column("model")
        for key in METRIC_COLUMNS.values():
            t.add_column(key, justify="right")
        for row in self.report.rows:
            name = row["model"] + (" *" if row["reference"] else "")
            t.add_row(name, *[format_metric(row[k]) for k in METRIC_COLUMNS])
        return t

    def print_summary(self) -> None:
        t = Table(title="clv run")
        t.add_column("stage")
        t.add_column("seconds", justify="right")
        t.add_column("output")
        for s in self.stages:
            t.add_row(s.name, f"{s.seconds:.1f}", s.output)
        t.add_row("total", f"{sum(s.seconds for s in self.stages):.1f}", "")
        self.console.print(t)
        if self.report is not None:
            self.console.print(self.metrics_table())
        c = self.cfg
        self.console.print(
            f"Outputs: warehouse [bold]{c.warehouse_path}[/bold] (tables clv_scores, "
            f"clv_scores_latest); BI copy {c.bi_dir}; features {c.features_dir}; Feast "
            f"registry and online store {c.feast_dir}; models {c.models_dir}; reports "
            f"{c.reports_dir}")
        self.console.print(what_next(c, self.html))


def backtest_table(result: backtests.BacktestResult) -> Table:
    """Each model's mean metric over the cutoffs (± spread) and its difference to the
    reference with the 95 % paired bootstrap interval."""
    table = Table(title=f"backtest over {len(result.cutoffs)} cutoffs "
                        f"(difference to {result.reference}, 95 % bootstrap interval)")
    table.add_column("model")
    shown = ("rmse", "mae", "normalized_gini", "top_decile_capture")
    for m in shown:
        table.add_column(m, justify="right")
    table.add_column("total_ratio", justify="right")
    for row in result.summary:
        cells = []
        for m in shown:
            cell = f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}"
            if row["model"] != result.reference and f"{m}_diff_low" in row:
                cell += (f"\n{row[f'{m}_diff']:+.3f} [{row[f'{m}_diff_low']:+.3f}, "
                         f"{row[f'{m}_diff_high']:+.3f}]")
            cells.append(cell)
        cells.append(f"{row['total_ratio_mean']:.3f}")
        table.add_row(row["model"], *cells)
    return table


def what_next(cfg: Config, html: HtmlReport | None) -> str:
    """The closing hints of a run: where to look, and what to run next."""
    data = "" if cfg.data_dir == (Path.cwd() / "data").resolve() else f" --data-dir {cfg.data_dir}"
    lines = ["", "[bold]What next[/bold]"]
    if html is not None:
        lines.append(f"  the report:      open {html.latest}")
    query = "from clv_scores_latest order by predicted_clv desc limit 10"
    lines += [
        f"  query the scores: duckdb -readonly {cfg.bi_dir / 'clv_bi.duckdb'} \"{query}\"",
        f"  serve CLV online: clv{data} serve   then   curl "
        "http://127.0.0.1:8000/v1/clv/<customer_id>",
        f"  your own data:    clv{data} import csv orders FILE ... ; clv{data} run "
        "--skip-generate   (docs/contracts.md)",
    ]
    return "\n".join(lines)
