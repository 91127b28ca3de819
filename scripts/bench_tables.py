"""Write the result tables of ``docs/benchmarks.md`` from the JSON files of ``clv bench``.

Every ``clv bench NAME --json docs/benchmarks/NAME.json`` run leaves one JSON file (the format
of ``BenchResult.as_json()``: ``benchmark``, ``device``, ``rows`` and, where recorded, ``date``,
``commit``, ``machine``, ``load_average``, ``load_average_end`` and ``command``). This script
reads ``docs/benchmarks/*.json`` and rewrites, in ``docs/benchmarks.md``, the region between
the marker comments ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->`` of each
benchmark: a line saying when, where and how it was measured, then a table of its rows. A
region whose benchmark has no JSON file says how to measure it. Figures are never typed into
the page by hand.

Region ``NAME`` shows ``NAME.json`` first, then any ``NAME-*.json`` in name order (further runs
of the same benchmark with other options, e.g. ``warehouse-100000.json``).

Examples
--------
Rewrite the tables after a benchmark run::

    clv bench cdnow --json docs/benchmarks/cdnow.json
    python scripts/bench_tables.py

Fail (exit status 1) when the page does not match the JSON files, e.g. in a test::

    python scripts/bench_tables.py --check

Notes
-----
Standard library only, so it runs without the project installed. Rows are rendered with their
identifying key (``measure``, ``ratio``, ``model`` or ``check``), their ``value`` and every other
key as ``key=value`` details; rows of accuracy benchmarks (one per model, with the evaluation
metrics) get a column per metric instead. Reference rows (``"reference": true``) are marked
with ``*``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOC = ROOT / "docs" / "benchmarks.md"
DEFAULT_RESULTS = ROOT / "docs" / "benchmarks"

#: Keys that name a row, in the order they are looked for.
NAME_KEYS = ("measure", "ratio", "model", "check")
#: Evaluation metrics of the accuracy benchmarks, in the order of their columns.
METRICS = ("normalized_gini", "spearman", "mae", "rmse", "decile_mape", "top_decile_capture",
           "total_ratio", "auc")
METRIC_HEADERS = {"normalized_gini": "norm. Gini", "spearman": "Spearman", "mae": "MAE",
                  "rmse": "RMSE", "decile_mape": "decile MAPE",
                  "top_decile_capture": "top 10 %", "total_ratio": "pred/actual", "auc": "AUC"}

REGION = re.compile(r"(<!-- bench:(?P<name>[A-Za-z0-9_.-]+):start -->)\n?(?P<body>.*?)"
                    r"(<!-- bench:(?P=name):end -->)", re.DOTALL)


class TablesError(Exception):
    """A JSON file or the page cannot be read as expected."""


def not_measured(name: str) -> str:
    """The line of a region whose benchmark has no JSON file yet."""
    return (f"Not measured yet: run `clv bench {name} --json docs/benchmarks/{name}.json`, "
            f"then `python scripts/bench_tables.py`.")


def fmt(value: Any) -> str:
    """One table cell: numbers readable, nested values as compact JSON, pipes escaped."""
    if value is None:
        text = "–"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            text = "–" if math.isnan(value) else str(value)
        elif value.is_integer() and abs(value) < 1e15:
            text = f"{int(value):,}"
        elif abs(value) >= 1000:
            text = f"{value:,.1f}"
        elif abs(value) >= 10:
            text = f"{round(value, 2):g}"
        elif abs(value) >= 1:
            text = f"{round(value, 3):g}"
        else:
            text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(", ", ": "), default=str)
    else:
        text = str(value)
    return text.replace("\n", " ").replace("|", "\\|")


def fmt_load(value: Any) -> str:
    """A load average (a list of the 1, 5 and 15 minute values) as ``a, b, c``."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:.2f}" if isinstance(v, (int, float)) else str(v) for v in value)
    return str(value)


def header(name: str, result: dict[str, Any]) -> str:
    """Where and how a result was measured, from the keys it has. The date and the commit stay
    in the JSON document (``docs/benchmarks/NAME.json``): the page names the machine, its load
    and the command that reproduces the figures."""
    command = result.get("command") or f"clv bench {name} --json docs/benchmarks/{name}.json"
    clauses = [f"Measured on {result['machine']}" if result.get("machine")
               else "Machine not recorded"]
    if result.get("load_average") is not None:
        load = f"load average {fmt_load(result['load_average'])} at start"
        if result.get("load_average_end") is not None:
            load += f" and {fmt_load(result['load_average_end'])} at the end"
        clauses.append(load)
    if result.get("device"):
        clauses.append(f"device {result['device']}")
    return ", ".join(clauses) + f"; command: `{command}`."


def row_name(row: dict[str, Any]) -> tuple[str | None, str]:
    """The key that names ``row`` and its text (reference rows marked with ``*``)."""
    for key in NAME_KEYS:
        if key in row:
            return key, str(row[key]) + (" *" if row.get("reference") else "")
    return None, "–"


def details(row: dict[str, Any], skip: set[str]) -> str:
    """Every key of ``row`` not shown in a column of its own, as ``k=v``."""
    return ", ".join(f"{k}={fmt(v)}" for k, v in row.items() if k not in skip)


def generic_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| measure / ratio | value | details |", "|---|---:|---|"]
    for row in rows:
        key, name = row_name(row)
        value = fmt(row["value"]) if "value" in row else ""
        skip = {key, "value", "reference"} if key else {"value", "reference"}
        lines.append(f"| {fmt(name)} | {value} | {details(row, skip)} |")
    return lines


def metrics_table(rows: list[dict[str, Any]], targets: dict[str, Any] | None) -> list[str]:
    shown = [m for m in METRICS if any(m in r for r in rows)]
    lines = ["| model | " + " | ".join(METRIC_HEADERS[m] for m in shown) + " | details |",
             "|---|" + "---:|" * len(shown) + "---|"]
    for row in rows:
        _, name = row_name(row)
        cells = [fmt(row.get(m)) for m in shown]
        skip = {"model", "reference", *shown}
        lines.append(f"| {fmt(name)} | " + " | ".join(cells) + f" | {details(row, skip)} |")
    if isinstance(targets, dict) and any(m in targets for m in shown):
        cells = [fmt(targets[m]) if m in targets else "" for m in shown]
        lines.append("| target | " + " | ".join(cells) + " | |")
    return lines


def frontier_table(rows: list[dict[str, Any]], best: dict[str, Any]) -> list[str]:
    """The frontier of mixes (``frontier`` in a CDNOW result): metrics and targets met."""
    shown = [m for m in METRICS if any(m in r for r in rows)]
    lines = ["Frontier: `w x learner + (1 - w) x bgnbd_gg`, measured on the holdout (a "
             "diagnostic, not a model; targets met: the mean forecast's).", "",
             "| mix | " + " | ".join(METRIC_HEADERS[m] for m in shown) + " | targets met |",
             "|---|" + "---:|" * len(shown) + "---:|"]
    for row in rows:
        cells = [fmt(row.get(m)) for m in shown]
        lines.append(f"| {fmt(row.get('model'))} | " + " | ".join(cells)
                     + f" | {fmt(row.get('targets_met'))} |")
    if best:
        lines += ["", f"Best point: {fmt(best.get('best'))}, {fmt(best.get('targets_met'))} of "
                      f"{fmt(best.get('targets_judged'))} targets met; missed: "
                      f"{', '.join(best.get('targets_missed') or []) or 'none'}."]
    return lines


def render_result(name: str, result: dict[str, Any]) -> list[str]:
    """The header line and the tables of one JSON result."""
    lines = [header(name, result), ""]
    rows = result.get("rows") or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TablesError("`rows` must be a list of objects")
    if not rows:
        return [*lines, "No rows recorded."]
    models = [r for r in rows if "model" in r and any(m in r for m in METRICS)]
    others = [r for r in rows if not ("model" in r and any(m in r for m in METRICS))]
    if models:
        lines += metrics_table(models, result.get("targets"))
    if models and others:
        lines.append("")
    if others:
        lines += generic_table(others)
    if any(r.get("reference") for r in rows):
        lines += ["", "Rows marked * are references."]
    frontier = result.get("frontier")
    if isinstance(frontier, list) and frontier:
        lines += ["", *frontier_table(frontier, result.get("frontier_best") or {})]
    return lines


def load_results(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` of ``results_dir`` by file stem (an absent folder holds none)."""
    out: dict[str, dict[str, Any]] = {}
    if not results_dir.is_dir():
        return out
    for path in sorted(results_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TablesError(f"{path}: not readable as JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise TablesError(f"{path}: expected a JSON object at the top level")
        out[path.stem] = data
    return out


def render_region(name: str, results: dict[str, dict[str, Any]]) -> str:
    """The generated text between the markers of benchmark ``name``."""
    stems = sorted(s for s in results if s == name or s.startswith(f"{name}-"))
    stems.sort(key=lambda s: s != name)  # NAME.json first, then NAME-*.json by name
    if not stems:
        return not_measured(name)
    blocks = []
    for stem in stems:
        try:
            blocks.append("\n".join(render_result(name, results[stem])))
        except TablesError as exc:
            raise TablesError(f"{stem}.json: {exc}") from exc
    return "\n\n".join(blocks)


def update(text: str, results: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """``text`` with every marked region regenerated, and the names of the regions."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        names.append(match["name"])
        end = f"<!-- bench:{match['name']}:end -->"
        return f"{match.group(1)}\n{render_region(match['name'], results)}\n{end}"

    new = REGION.sub(replace, text)
    starts = re.findall(r"<!-- bench:([A-Za-z0-9_.-]+):start -->", text)
    unmatched = sorted(set(starts) - set(names))
    if unmatched:
        raise TablesError(f"start marker without its end marker: {', '.join(unmatched)}")
    return new, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rewrite the marked result tables of docs/benchmarks.md from the JSON "
                    "files that `clv bench NAME --json docs/benchmarks/NAME.json` writes.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the page is out of date")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC,
                        help="the page with the markers (default: docs/benchmarks.md)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help="the folder of JSON results (default: docs/benchmarks)")
    args = parser.parse_args(argv)

    try:
        text = args.doc.read_text(encoding="utf-8")
        results = load_results(args.results)
        new, names = update(text, results)
    except (OSError, TablesError) as exc:
        print(f"bench_tables: {exc}", file=sys.stderr)
        return 2
    orphans = sorted(s for s in results
                     if not any(s == n or s.startswith(f"{n}-") for n in names))
    for stem in orphans:
        print(f"bench_tables: {stem}.json has no region <!-- bench:{stem}:start --> in "
              f"{args.doc}", file=sys.stderr)
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python scripts/bench_tables.py",
                  file=sys.stderr)
            return 1
        print(f"{args.doc} is up to date ({len(names)} benchmark regions)")
        return 0
    if new != text:
        args.doc.write_text(new, encoding="utf-8")
        print(f"rewrote {len(names)} benchmark regions of {args.doc}")
    else:
        print(f"{args.doc} already up to date ({len(names)} benchmark regions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
