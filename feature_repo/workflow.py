"""A runnable tour of the Feast API on the platform's feature store, after `clv run`.

Like the workflow script of ``feast init``'s template, it walks through the calls an engineer
makes by hand, on the real data of a data directory:

1. ``feast apply``: register the definitions of ``features.py`` (a no-op when unchanged);
2. historical retrieval: point-in-time correct features for (customer, as-of date) rows, as
   training does, through the feature service ``clv_v1``;
3. materialization: load the latest as-of date's rows into the online store;
4. an online read: one customer's features, as apps and ``clv serve`` read them;
5. a push: a changed row written straight to the online store through a push source (a live
   event does this), read back, then the original row pushed again.

Run it from anywhere after ``clv run`` (or ``make demo``)::

    python feature_repo/workflow.py                 # the data directory ./data
    python feature_repo/workflow.py --data-dir /path/to/data

The online store ends as it started (the push is undone, the materialized rows are the ones
``clv features`` loads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent


def configure(data_dir: Path | None) -> None:
    """Export the paths ``feature_store.yaml`` and ``features.py`` read (what ``eval "$(clv
    env)"`` does in a shell)."""
    from clv_models.core.config import load_config

    overrides = {"data_dir": data_dir} if data_dir else {}
    os.environ.update(load_config(None, overrides).env())


def step(title: str) -> None:
    print(f"\n=== {title}")


def run(data_dir: Path | None = None) -> dict:
    """The tour; returns what each step showed (the test checks it)."""
    configure(data_dir)
    from feast import FeatureStore
    from feast.data_source import PushMode

    # Feast's DuckDB offline store calls a method DuckDB 1.5 deprecates: not ours to fix.
    warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated",
                            category=DeprecationWarning)

    shown: dict = {}
    step("1. feast apply: register entities, feature views and services")
    feast = Path(sys.executable).parent / "feast"
    applied = subprocess.run([str(feast) if feast.exists() else "feast", "apply"], cwd=REPO,
                             check=True, env=os.environ.copy(), capture_output=True, text=True)
    # Feast 0.67 prints each view's protobuf twice even when nothing changed (it stamps new
    # times on the sources): its one-line summaries are what matter.
    print("\n".join(line for line in applied.stdout.splitlines()
                    if line.startswith(("Created", "Updated", "Deleted", "No changes"))))
    store = FeatureStore(repo_path=str(REPO))
    shown["views"] = sorted(v.name for v in store.list_feature_views())
    shown["services"] = sorted(s.name for s in store.list_feature_services())
    print(f"feature views {shown['views']}; services {shown['services']}")

    step("2. historical retrieval: features as they were at each as-of date")
    rfm = pd.read_parquet(Path(os.environ["CLV_FEATURES_DIR"]) / "customer_rfm.parquet",
                          columns=["customer_id", "as_of_date", "event_timestamp"])
    latest = rfm["event_timestamp"].max()
    customers = sorted(rfm.loc[rfm["event_timestamp"] == latest, "customer_id"])[:3]
    entity_df = rfm[rfm["customer_id"].isin(customers)][["customer_id", "event_timestamp"]]
    training = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service("clv_v1")).to_df()
    shown["historical_rows"] = len(training)
    print(training.sort_values(["customer_id", "event_timestamp"])
          [["customer_id", "event_timestamp", "order_count", "net_revenue", "orders_90d"]]
          .tail(6).to_string(index=False))

    step("3. materialize the latest as-of date into the online store")
    start = pd.Timestamp(latest).to_pydatetime().replace(tzinfo=dt.timezone.utc)
    store.materialize(start_date=start, end_date=start + dt.timedelta(seconds=1))
    print(f"materialized rows with event_timestamp {start:%Y-%m-%d}")

    step("4. online read: one customer's latest features")
    customer = customers[0]
    features = ["customer_rfm:order_count", "customer_rfm:net_revenue",
                "customer_timeseries:orders_90d"]

    def read() -> dict:
        return store.get_online_features(features=features,
                                         entity_rows=[{"customer_id": customer}]).to_dict()

    shown["online"] = read()
    print(shown["online"])

    step("5. push: a changed row straight to the online store, then the original again")
    row = pd.read_parquet(Path(os.environ["CLV_FEATURES_DIR"]) / "customer_rfm.parquet",
                          filters=[("customer_id", "=", customer),
                                   ("event_timestamp", "=", latest)])
    row = row.drop(columns="as_of_date")
    changed = row.assign(order_count=row["order_count"] + 1)
    store.push("customer_rfm_push", changed, to=PushMode.ONLINE)
    shown["after_push"] = read()
    print(f"after the push: {shown['after_push']}")
    store.push("customer_rfm_push", row, to=PushMode.ONLINE)
    shown["restored"] = read()
    print(f"restored:       {shown['restored']}")
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="the data directory (default: ./data)")
    args = parser.parse_args(argv)
    run(args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
