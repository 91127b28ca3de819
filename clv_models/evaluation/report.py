"""The evaluation as an HTML page with PNG charts, one folder per run.

:mod:`clv_models.evaluation.evaluation` computes the metrics; this module only renders them, from
the arrays the metrics were computed on (kept on the
:class:`~clv_models.evaluation.evaluation.EvaluationReport`), and
reuses :mod:`clv_models.core.metrics` for every curve and table, so a chart can never disagree with
the numbers beside it.

Layout under the reports directory (``DATA_DIR/reports``)::

    evaluation.json, deciles.csv      the latest run's figures (unchanged, read by other code)
    runs/<run id>/index.html          one self-contained folder per run: the page, its PNGs and
    runs/<run id>/*.png               a copy of evaluation.json and deciles.csv
    latest/index.html (+ PNGs)        a copy of the newest run folder: a stable address

The page references its files by relative name only (no CDN, no script, no network), so a run
folder can be copied, zipped or served as is. ``latest/`` is replaced by a rename, never edited
in place, so a reader sees either the previous run or the new one. Run folders are kept; delete
old ones by hand when they are no longer needed.

Charts are drawn with matplotlib's object API on the Agg canvas (no ``pyplot``, no display, no
global backend switch): the gain (Lorenz) curve, predicted vs actual per predicted decile, the
calibration and ROC curve of ``p_purchase`` and the global feature importance of the models whose
metadata carries a ``feature_importance`` mapping (feature -> non-negative importance).
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from clv_models.core import metrics

if TYPE_CHECKING:
    from clv_models.evaluation.evaluation import EvaluationReport

#: Metric key -> column label, in the order the terminal table and the HTML page show them.
METRIC_COLUMNS = {"normalized_gini": "norm. Gini", "spearman": "Spearman", "mae": "MAE",
                  "rmse": "RMSE", "decile_mape": "decile MAPE", "top_decile_capture": "top 10%",
                  "total_ratio": "pred/actual", "auc": "AUC", "mae_p50": "MAE of p50",
                  "coverage_80": "p10-p90 coverage"}
REFERENCE_NOTE = ("* reference rows: naive = historical spend rate; bgnbd_gg = BG/NBD + "
                  "Gamma-Gamma (maximum likelihood); oracle = expected value under the true "
                  "parameters (generated data only)")
INDEX_FILE = "index.html"
RUNS_DIR = "runs"
LATEST_DIR = "latest"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Most points drawn per curve (curves have one point per customer; the eye needs far fewer).
MAX_CURVE_POINTS = 2_000
#: Features shown per model in the importance chart.
TOP_FEATURES = 15


def format_metric(value: float | None) -> str:
    """Ratios with 3 decimals, currency amounts (>= 10) with 1; a dash for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


@dataclass
class HtmlReport:
    """Where one run's report was written."""

    run_id: str
    run_dir: Path
    index: Path
    latest: Path
    figures: list[Path] = field(default_factory=list)


def write_html_report(report: EvaluationReport, reports_dir: Path,
                      attachments: Sequence[Path] = (), run_id: str | None = None,
                      now: dt.datetime | None = None) -> HtmlReport:
    """Render the report into ``runs/<run id>/`` and publish a copy as ``latest/``.

    Parameters
    ----------
    report
        The evaluation, with its arrays (``actual``, ``purchased``, ``predictions``).
    reports_dir
        The reports directory (``DATA_DIR/reports``).
    attachments
        Files copied into the run folder and linked from the page (``evaluation.json``,
        ``deciles.csv``), so each run keeps its own figures after later runs overwrite them.
    run_id
        Name of the run folder; default: the UTC time, e.g. ``20250701T120000Z``.
    now
        The time written on the page (default: now, UTC).

    Returns
    -------
    HtmlReport
        The run folder, its page, the stable ``latest/index.html`` and the PNGs.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    run_dir = _new_run_dir(reports_dir / RUNS_DIR, run_id or now.strftime("%Y%m%dT%H%M%SZ"))
    figures: dict[str, tuple[str, str]] = {}  # section -> (file name, note when there is none)
    for key, draw in _CHARTS.items():
        fig, note = draw(report)
        if fig is not None:
            fig.savefig(run_dir / f"{key}.png")
        figures[key] = (f"{key}.png" if fig is not None else "", note)
    links = []
    for path in attachments:
        shutil.copy2(path, run_dir / path.name)
        links.append(path.name)
    index = run_dir / INDEX_FILE
    index.write_text(render_html(report, figures, run_dir.name, now, links), encoding="utf-8")
    latest = _publish_latest(run_dir, reports_dir)
    return HtmlReport(run_id=run_dir.name, run_dir=run_dir, index=index,
                      latest=latest / INDEX_FILE,
                      figures=[run_dir / f for f, _ in figures.values() if f])


def _new_run_dir(runs: Path, name: str) -> Path:
    """A fresh folder ``runs/name`` (``name-2``, ``-3``, ... when two runs share a second)."""
    runs.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = runs / (name if i == 1 else f"{name}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder name for {name} in {runs}")


def _publish_latest(run_dir: Path, reports_dir: Path) -> Path:
    """Replace ``latest/`` by a copy of ``run_dir``: copy aside, then swap by renames."""
    latest = reports_dir / LATEST_DIR
    tag = uuid.uuid4().hex[:8]
    staged, old = reports_dir / f".latest-new-{tag}", reports_dir / f".latest-old-{tag}"
    shutil.copytree(run_dir, staged)
    if latest.exists():
        latest.rename(old)
    staged.rename(latest)
    shutil.rmtree(old, ignore_errors=True)
    return latest


# -- charts -----------------------------------------------------------------------------------
def _style(names: Sequence[str], reference: set[str]) -> dict[str, dict]:
    """One colour per model, the same in every chart; reference models dashed."""
    colors = [f"C{i}" for i in range(10)]
    return {n: {"color": colors[i % 10], "linestyle": "--" if n in reference else "-"}
            for i, n in enumerate(names)}


def _context(report: EvaluationReport) -> tuple[dict[str, dict], dict[str, dict]]:
    rows = {r["model"]: r for r in report.rows}
    names = list(dict.fromkeys([*rows, *report.predictions, *report.deciles,
                                *report.feature_importance]))
    return rows, _style(names, {n for n, r in rows.items() if r.get("reference")})


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most :data:`MAX_CURVE_POINTS` points of a curve, first and last kept."""
    if len(x) <= MAX_CURVE_POINTS:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int))
    return x[idx], y[idx]


def _figure(width: float = 7.0, height: float = 5.0) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def gain_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Cumulative share of actual value vs share of customers ranked by each prediction."""
    actual = np.asarray(report.actual, dtype=float)
    if not report.predictions or actual.size == 0 or actual.sum() <= 0:
        return None, "No gain curve: no predictions or no positive actual value."
    rows, style = _context(report)
    x = np.arange(actual.size + 1) / actual.size
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    perfect = np.concatenate([[0.0], metrics.lorenz_curve(actual, actual)])
    ax.plot(*_thin(x, perfect), color="black", linewidth=1, label="perfect (ranked by actual)")
    for name, pred in report.predictions.items():
        g = np.concatenate([[0.0], metrics.lorenz_curve(actual, pred.predicted_clv)])
        gini = rows.get(name, {}).get("normalized_gini")
        ax.plot(*_thin(x, g), **style[name],
                label=f"{name} (norm. Gini {format_metric(gini)})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="Gain (Lorenz) curve",
           xlabel="share of customers, ranked by prediction (highest first)",
           ylabel="cumulative share of actual net revenue")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig, ""


#: Share of customers the zoomed lift chart shows (where the curves are told apart).
LIFT_TOP_SHARE = 0.2


def lift_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """The gain curve zoomed to the top :data:`LIFT_TOP_SHARE` of customers, with the lift
    (share of value captured over share of customers) on a second panel."""
    actual = np.asarray(report.actual, dtype=float)
    if not report.predictions or actual.size == 0 or actual.sum() <= 0:
        return None, "No lift chart: no predictions or no positive actual value."
    _, style = _context(report)
    n = max(int(np.ceil(actual.size * LIFT_TOP_SHARE)), 1)
    x = np.arange(1, n + 1) / actual.size
    fig = _figure(11.0, 4.5)
    gain_ax, lift_ax = fig.subplots(1, 2)
    perfect = metrics.lorenz_curve(actual, actual)[:n]
    gain_ax.plot(*_thin(x, perfect), color="black", linewidth=1, label="perfect")
    gain_ax.plot([0, LIFT_TOP_SHARE], [0, LIFT_TOP_SHARE], color="grey", linestyle=":",
                 label="random")
    for name, pred in report.predictions.items():
        g = metrics.lorenz_curve(actual, pred.predicted_clv)[:n]
        gain_ax.plot(*_thin(x, g), **style[name], label=name)
        lift_ax.plot(*_thin(x, g / x), **style[name], label=name)
    gain_ax.set(xlim=(0, LIFT_TOP_SHARE), ylim=(0, None),
                title=f"Gain in the top {LIFT_TOP_SHARE:.0%} of customers",
                xlabel="share of customers, ranked by prediction", ylabel="share of actual value")
    lift_ax.axhline(1.0, color="grey", linestyle=":")
    lift_ax.set(xlim=(0, LIFT_TOP_SHARE), title="Lift (value share / customer share)",
                xlabel="share of customers, ranked by prediction", ylabel="lift")
    for ax in (gain_ax, lift_ax):
        ax.grid(alpha=0.3)
    gain_ax.legend(loc="lower right", fontsize="small")
    return fig, ""


def coverage_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Share of actuals inside ``[clv_p10, clv_p90]`` per predicted decile (target 0.80), with
    the customers per decile, for every model with quantiles."""
    with_q = {n: p for n, p in report.predictions.items()
              if p.clv_p10 is not None and p.clv_p90 is not None}
    actual = np.asarray(report.actual, dtype=float)
    if not with_q or actual.size == 0:
        return None, "No coverage plot: no model gives quantiles."
    rows, style = _context(report)
    fig = _figure(7.0, 5.0)
    ax = fig.add_subplot()
    ax.axhline(0.8, color="grey", linestyle=":", label="target 0.80")
    counts = None
    for name, p in with_q.items():
        group = metrics.assign_deciles(p.predicted_clv, np.arange(actual.size))
        inside = (actual >= p.clv_p10) & (actual <= p.clv_p90)
        deciles = np.arange(1, 11)
        counts = np.array([(group == d).sum() for d in deciles])
        share = np.array([inside[group == d].mean() if c else np.nan
                          for d, c in zip(deciles, counts, strict=True)])
        cov = rows.get(name, {}).get("coverage_80")
        ax.plot(deciles, share, marker="o", **style[name],
                label=f"{name} (overall {format_metric(cov)})")
    ax.set(xticks=np.arange(1, 11), ylim=(0, 1.02), xlabel="predicted decile (1 = highest)",
           ylabel="share of actuals inside [p10, p90]",
           title="Coverage of the 80 % interval per decile"
                 + (f" ({counts[0]:,} customers per decile)" if counts is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return fig, ""


def training_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Validation loss per epoch (deep model) or boosting round (XGBoost), one panel per
    curve, the best point marked."""
    curves = [(n, label, np.asarray(v, float)) for n, c in report.training_curves.items()
              for label, v in c.items() if len(v)]
    if not curves:
        return None, "No training curves: no evaluated model recorded its validation loss."
    _, style = _context(report)
    ncols = min(2, len(curves))
    nrows = -(-len(curves) // ncols)
    fig = _figure(6.0 * ncols, 3.4 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, label, values) in zip(axes, curves, strict=False):
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, color=style.get(name, {}).get("color", "C0"))
        best = int(np.nanargmin(values))
        ax.plot(steps[best], values[best], marker="o", color="black")
        ax.set(title=f"{name}: {label}", xlabel="epoch" if "epoch" in label else "round",
               ylabel="loss")
        ax.grid(alpha=0.3)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    return fig, ""


def decile_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Mean predicted beside mean actual value per predicted decile, one panel per model, on a
    symmetric log scale (linear below 1 currency unit) so the low deciles stay visible."""
    if not report.deciles:
        return None, "No decile chart: no model was evaluated."
    rows, style = _context(report)
    names = list(report.deciles)
    ncols = min(2, len(names))
    nrows = -(-len(names) // ncols)
    fig = _figure(6.0 * ncols, 3.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        table = report.deciles[name]
        d = table["decile"].to_numpy()
        ax.bar(d - 0.2, table["mean_actual"], width=0.4, color="lightgrey",
               edgecolor="grey", label="mean actual")
        ax.bar(d + 0.2, table["mean_predicted"], width=0.4, color=style[name]["color"],
               label="mean predicted")
        mape = rows.get(name, {}).get("decile_mape")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set(title=f"{name} (decile MAPE {format_metric(mape)})", xticks=d,
               xlabel="predicted decile (1 = highest)",
               ylabel="net revenue per customer (log scale)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig, ""


def _with_p_purchase(report: EvaluationReport) -> dict[str, np.ndarray]:
    return {n: p.p_purchase for n, p in report.predictions.items() if p.p_purchase is not None}


def calibration_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Observed purchase rate vs mean predicted ``p_purchase`` in probability bins."""
    probs = _with_p_purchase(report)
    if not probs or len(report.purchased) == 0:
        return None, "No calibration plot: no model gives p_purchase."
    _, style = _context(report)
    fig = _figure(6.5, 7.0)
    ax, count_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    width = 0.1 / (len(probs) + 1)
    for k, (name, p) in enumerate(probs.items()):
        table = metrics.calibration_table(report.purchased, p)
        ece = metrics.calibration_error(report.purchased, p)
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", markersize=4,
                **style[name], label=f"{name} (calibration error {ece:.3f})")
        count_ax.bar(table["bin_low"] + width * (k + 0.5), table["customers"], width=width,
                     color=style[name]["color"])
    ax.set(xlim=(0, 1), ylim=(0, 1), title="Reliability of p_purchase (10 equal-width bins)",
           ylabel="observed share of customers who purchased")
    count_ax.set(yscale="log", xlabel="predicted probability of a purchase in the horizon",
                 ylabel="customers per bin")
    for a in (ax, count_ax):
        a.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return fig, ""


def roc_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """ROC curve of ``p_purchase`` for any purchase in the horizon, AUC in the legend."""
    probs = _with_p_purchase(report)
    purchased = np.asarray(report.purchased, dtype=bool)
    if not probs or purchased.all() or not purchased.any():
        return None, "No ROC curve: no model gives p_purchase, or every customer is in one class."
    rows, style = _context(report)
    fig = _figure(6.0, 5.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random (AUC 0.5)")
    for name, p in probs.items():
        fpr, tpr = metrics.roc_curve(purchased, p)
        auc = rows.get(name, {}).get("auc")
        ax.plot(*_thin(fpr, tpr), **style[name], label=f"{name} (AUC {format_metric(auc)})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC of p_purchase: any purchase in the horizon",
           xlabel="false positive rate", ylabel="true positive rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig, ""


def importance_chart(report: EvaluationReport) -> tuple[Figure | None, str]:
    """Top features per model by global importance, as shares of the model's total."""
    models = {n: imp for n, imp in report.feature_importance.items() if imp}
    if not models:
        return None, "No feature importance: no evaluated model exposes one."
    _, style = _context(report)
    shown = {n: sorted(imp.items(), key=lambda kv: -kv[1])[:TOP_FEATURES]
             for n, imp in models.items()}
    fig = _figure(8.0, sum(0.28 * len(v) + 1.2 for v in shown.values()))
    axes = fig.subplots(len(models), 1, squeeze=False).ravel()
    for ax, (name, top) in zip(axes, shown.items(), strict=True):
        total = sum(models[name].values()) or 1.0
        labels = [f for f, _ in top][::-1]
        ax.barh(labels, [v / total for _, v in top][::-1], color=style[name]["color"])
        ax.set(title=f"{name}: top {len(top)} of {len(models[name])} features",
               xlabel="share of total importance")
        ax.tick_params(axis="y", labelsize="small")
        ax.grid(axis="x", alpha=0.3)
    return fig, ""


_CHARTS = {"gain": gain_chart, "lift": lift_chart, "deciles": decile_chart,
           "calibration": calibration_chart, "coverage": coverage_chart, "roc": roc_chart,
           "training": training_chart, "feature_importance": importance_chart}


# -- HTML -------------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]],
           caption: str = "") -> str:
    """An HTML table; every cell is escaped, numeric-looking columns right-aligned by CSS."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(figures: dict[str, tuple[str, str]], key: str, alt: str) -> str:
    file, note = figures.get(key, ("", ""))
    if not file:
        return f'<p class="note">{_e(note)}</p>'
    return f'<img src="{_e(file)}" alt="{_e(alt)}">'


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 78rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; }
td:not(:first-child), th:not(:first-child) { text-align: right; }
th { background: #f4f4f4; }
caption { caption-side: bottom; text-align: left; color: #666; font-size: 0.8rem; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0 1rem; }
.note { color: #666; font-style: italic; }
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5rem 0.8rem; }
.deciles { display: flex; flex-wrap: wrap; gap: 0 2rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: 600; }
"""


def render_html(report: EvaluationReport, figures: dict[str, tuple[str, str]], run_id: str,
                generated_at: dt.datetime, links: Sequence[str] = ()) -> str:
    """The report page as one HTML string (all text escaped, images by relative file name).

    Parameters
    ----------
    report
        The evaluation.
    figures
        Chart key -> (PNG file name, or ``""`` with a note saying why there is no chart).
    run_id, generated_at
        Shown in the header.
    links
        File names next to the page to link (e.g. ``evaluation.json``).
    """
    split = report.split or {}
    rows_per_part = split.get("rows", {})
    fit_dates = split.get("fit_dates", [])
    fit_span = f"{fit_dates[0]} .. {fit_dates[-1]} ({len(fit_dates)} dates)" if fit_dates else ""
    horizon = f"{report.horizon_days} days" if report.horizon_days else "–"
    facts = [("run", run_id), ("generated", f"{generated_at:%Y-%m-%d %H:%M:%S %Z}".strip()),
             ("evaluation as-of date", report.as_of_date), ("horizon", horizon),
             ("customers evaluated", f"{report.customers:,}"),
             ("actual total net revenue", f"{report.actual_total:,.2f}"),
             ("data source", report.data_source or "–")]
    split_rows = [("fit", fit_span, _count(rows_per_part.get("fit"))),
                  ("validation (early stopping)", split.get("validation_date", ""),
                   _count(rows_per_part.get("validation"))),
                  ("evaluation", split.get("evaluation_date", report.as_of_date),
                   _count(rows_per_part.get("evaluation", report.customers)))]
    metric_rows = [[r["model"] + (" *" if r.get("reference") else "")
                    + (" (champion)" if r.get("champion") else ""), r.get("model_version", ""),
                    *[format_metric(r.get(k)) for k in METRIC_COLUMNS]] for r in report.rows]
    decile_tables = "".join(
        f"<div><h3>{_e(name)}</h3>"
        + _table(["decile", "customers", "mean predicted", "mean actual", "share of actual"],
                 [[int(d.decile), f"{int(d.customers):,}", format_metric(d.mean_predicted),
                   format_metric(d.mean_actual), f"{d.actual_share:.3f}"]
                  for d in table.itertuples()]) + "</div>"
        for name, table in report.deciles.items())
    no_importance = [r["model"] for r in report.rows
                     if r["model"] not in report.feature_importance]
    importance_note = (f'<p class="note">Without a global feature importance: '
                       f'{_e(", ".join(no_importance))}.</p>' if no_importance else "")
    backtest = backtest_section(report.backtest)
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in report.warnings)
    link_items = "".join(f'<li><a href="{_e(f)}">{_e(f)}</a></li>' for f in links)
    title = f"CLV evaluation at {report.as_of_date}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<dl>{"".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)}</dl>
{warnings}
<h2>Split</h2>
{_table(["part", "as-of date(s)", "rows"], split_rows)}
<h2>Metrics</h2>
{_table(["model", "version", *METRIC_COLUMNS.values()], metric_rows, caption=REFERENCE_NOTE)}
{champion_section(report.choice)}
{calibration_section(report.calibration)}
{backtest}
<h2>Gain curve</h2>
{_img(figures, "gain", "gain curve: share of actual value by share of customers")}
{_img(figures, "lift", "gain and lift in the top 20 % of customers")}
<h2>Deciles</h2>
{_img(figures, "deciles", "mean predicted and mean actual value per predicted decile")}
<div class="deciles">{decile_tables}</div>
<h2>Purchase probability</h2>
{_img(figures, "calibration", "reliability curve of p_purchase with customers per bin")}
{_img(figures, "roc", "ROC curve of p_purchase")}
<h2>Forecast intervals</h2>
{_img(figures, "coverage", "share of actuals inside the 80 % interval per decile")}
<h2>Training curves</h2>
{_img(figures, "training", "validation loss per epoch or boosting round")}
<h2>Feature importance</h2>
{_img(figures, "feature_importance", "global feature importance per model")}
{importance_note}
<h2>Glossary</h2>
{GLOSSARY}
{f"<h2>Files</h2><ul>{link_items}</ul>" if link_items else ""}
</body>
</html>
"""


#: Metrics of the backtest table, with their direction.
BACKTEST_COLUMNS = {"rmse": "RMSE", "mae": "MAE", "normalized_gini": "norm. Gini",
                    "top_decile_capture": "top 10%"}


def backtest_section(backtest: dict | None) -> str:
    """The ``clv backtest`` summary as a table: mean ± spread over the cutoffs, and the
    difference to the reference with its 95 % bootstrap interval."""
    if not backtest:
        return ('<h2>Backtest</h2><p class="note">No backtest yet: run <code>clv backtest'
                '</code> for every model at successive cutoffs.</p>')
    ref = backtest.get("reference", "")
    rows = []
    for r in backtest.get("summary", []):
        cells = [r["model"]]
        for key in BACKTEST_COLUMNS:
            mean, std = r.get(f"{key}_mean"), r.get(f"{key}_std")
            cell = f"{format_metric(mean)} ± {format_metric(std)}"
            if r["model"] != ref and r.get(f"{key}_diff_low") is not None:
                cell += (f"; {r[f'{key}_diff']:+.3f} [{r[f'{key}_diff_low']:+.3f}, "
                         f"{r[f'{key}_diff_high']:+.3f}]")
            cells.append(cell)
        rows.append(cells)
    cutoffs = ", ".join(f"{c['cutoff']} ({c['champion']})" for c in backtest.get("cutoffs", []))
    return ("<h2>Backtest</h2>"
            + _table(["model", *BACKTEST_COLUMNS.values()], rows,
                     caption=f"mean ± standard deviation over the cutoffs; difference to {ref} "
                             f"[95 % paired bootstrap interval]. Cutoffs (champion): {cutoffs}"))


def champion_section(choice: dict | None) -> str:
    """The champion, what it rests on (the rule, the validation cutoffs) and the evidence:
    each candidate's mean metrics over the cutoffs and its RMSE difference to the reference."""
    if not choice:
        return ""
    rows = []
    for r in choice.get("cutoff_evidence") or []:
        diff = ""
        if r.get("rmse_diff_low") is not None and r["model"] != "bgnbd_gg":
            diff = (f"{r['rmse_diff']:+.3f} [{r['rmse_diff_low']:+.3f}, "
                    f"{r['rmse_diff_high']:+.3f}]")
        rows.append([r["model"], format_metric(r.get("rmse_mean")),
                     format_metric(r.get("normalized_gini_mean")),
                     format_metric(r.get("total_ratio_mean")), diff,
                     "yes" if r.get("admissible") else "no"])
    evidence = (_table(["candidate", "RMSE", "norm. Gini", "total ratio",
                        "RMSE - bgnbd_gg [95 %]", "admissible"], rows,
                       caption="means over the validation cutoffs "
                               f"{', '.join(choice.get('validation_cutoffs', []))}")
                if rows else "")
    weights = ", ".join(f"{n} {w:.2f}" for n, w in (choice.get("weights") or {}).items()
                        if w > 0) or "none"
    return (f"<h2>Champion: {_e(choice.get('champion', ''))}</h2>"
            f"<p>Chosen on {_e(choice.get('basis', ''))}; never on the evaluation date. "
            f"Rule: {_e(choice.get('rule', ''))}. Blend weights: {_e(weights)}.</p>{evidence}")


def calibration_section(rows: list[dict]) -> str:
    """Each model's calibration (fitted on validation cutoffs) and what it did at the
    evaluation date: the total ratio and the p_purchase calibration error before and after."""
    if not rows:
        return ""
    body = [[r["model"], f"{r['clv_scale']:.3f}", format_metric(r["total_ratio_raw"]),
             format_metric(r["total_ratio"]), format_metric(r["p_purchase_ece_raw"]),
             format_metric(r["p_purchase_ece"])] for r in rows]
    return ("<h2>Calibration</h2>"
            + _table(["model", "validation total factor", "total ratio before", "total ratio after",
                      "p_purchase calibration error before", "after"], body,
                     caption="fitted on the validation cutoffs; the metrics above are "
                             "after calibration"))


#: What the report's metrics mean, in one place for readers of the page.
GLOSSARY = """<dl>
<dt>RMSE, MAE</dt><dd>Root mean squared and mean absolute error of predicted_clv against the
net revenue each customer brought in the horizon. RMSE is dominated by the big spenders.</dd>
<dt>MAE p50</dt><dd>Mean absolute error of the median forecast clv_p50: the forecast that
minimises MAE (for most customers it is 0: they will not buy).</dd>
<dt>norm. Gini</dt><dd>How well the ranking by prediction sorts customers by value: the area
between the gain curve and the diagonal, divided by the same for a perfect ranking (1 =
perfect, 0 = random).</dd>
<dt>top 10 %</dt><dd>Share of all actual value that the 10 % of customers with the highest
predictions brought.</dd>
<dt>decile MAPE</dt><dd>Mean absolute percentage error of the mean prediction per predicted
decile: are the deciles' levels right?</dd>
<dt>total ratio</dt><dd>Predicted total over actual total (1 = right in aggregate).</dd>
<dt>AUC</dt><dd>Probability that a buyer gets a higher p_purchase than a non-buyer.</dd>
<dt>calibration error</dt><dd>Customer-weighted mean gap between predicted and observed
purchase rate over 10 probability bins (0 = a predicted 30 % means 30 % buy).</dd>
<dt>coverage 80</dt><dd>Share of actuals inside [clv_p10, clv_p90]; 0.80 for honest
intervals.</dd>
<dt>Spearman</dt><dd>Rank correlation of prediction and actual; with most actuals tied at 0 it
disagrees with Gini, so it is reported, not targeted.</dd>
</dl>"""


def _count(n: int | None) -> str:
    return "" if n is None else f"{n:,}"
