"""Train the deep ZILN model on CPU and, where present, CUDA on the same synthetic rows.

Checks that the CUDA path (bf16 autocast, training set on the GPU) learns as well as the CPU
path and reports training throughput per device. Not a test: run it by hand, e.g.

    python scripts/deep_device_check.py --rows 1000000 --epochs 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clv_models.config import DeepConfig  # noqa: E402
from clv_models.metrics import normalized_gini  # noqa: E402
from clv_models.models.deep import DeepCLV  # noqa: E402


def synthetic(n: int, seed: int = 0, sequences: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """RFM-like features and a zero-inflated, heavy-tailed spend that depends on them; with
    ``sequences``, also the deep model's other inputs (clv_v2): 52-week revenue and view
    sequences consistent with the order rate and recency, country and acquisition channel."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(3, n) + 1
    age = rng.integers(30, 900, n)
    recency = np.minimum(rng.exponential(120, n).astype(int) + 1, age)
    aov = rng.lognormal(3.7, 0.5, n)
    X = pd.DataFrame({
        "order_count": orders, "frequency": orders - 1, "t_days": age,
        "days_since_last_order": recency, "recency_days": age - recency,
        "gross_revenue": orders * aov, "net_revenue": orders * aov * 0.9,
        "avg_order_value": aov, "monetary_value": aov * rng.uniform(0.8, 1.2, n),
        "first_order_value": aov * rng.uniform(0.5, 1.5, n), "refund_amount": orders * aov * 0.1,
    })
    rate = orders / age * np.exp(-recency / 150)
    if sequences:
        week = np.arange(52)
        since_last = (recency // 7)[:, None]
        active = (rng.random((n, 52)) < np.minimum(orders / age * 7, 1)[:, None]) & (
            week >= since_last) | (week == since_last)
        revenue = np.where(active, aov[:, None] * rng.lognormal(0, 0.3, (n, 52)), 0.0)
        X["weekly_net_revenue_52w"] = list(revenue.astype(np.float32))
        X["weekly_views_52w"] = list(rng.poisson(active * 3 + 0.3).astype(np.float32))
        X["country"] = rng.choice(["US", "GB", "DE", "FR", "NL", None], n)
        X["acquisition_channel"] = rng.choice(["organic", "paid", "referral", "email"], n)
    buys = rng.random(n) < 1 - np.exp(-rate * 180)
    y = np.where(buys, rng.lognormal(np.log(aov) + 0.5, 0.6), 0.0)
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="2048,16384")
    parser.add_argument("--tabular-only", action="store_true",
                        help="numeric columns only (no sequences, no categoricals)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    X, y = synthetic(args.rows + 100_000, sequences=not args.tabular_only)
    Xt, yt, Xv, yv = X[: args.rows], y[: args.rows], X[args.rows:], y[args.rows:]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for batch in map(int, args.batch_sizes.split(",")):
            params = DeepConfig(epochs=args.epochs, patience=args.epochs, batch_size=batch,
                                device=device)
            start = time.perf_counter()
            model = DeepCLV(params, seed=0).fit(Xt, yt, Xv, yv)
            wall = time.perf_counter() - start
            start = time.perf_counter()
            pred = model.predict(Xv)
            predict_seconds = time.perf_counter() - start
            name = (torch.cuda.get_device_name() if device == "cuda"
                    else f"cpu x{torch.get_num_threads()}")
            rows.append({"device": name, "batch_size": batch, "rows": args.rows,
                         "inputs": "tabular" if args.tabular_only else "tabular+cat+seq",
                         "epochs": model.metadata["epochs_run"],
                         "samples_per_second": model.metadata["samples_per_second"],
                         "fit_wall_seconds": round(wall, 2),
                         "best_val_loss": round(model.metadata["best_val_loss"], 4),
                         "normalized_gini": round(normalized_gini(yv, pred.predicted_clv), 4),
                         "total_ratio": round(float(pred.predicted_clv.sum() / yv.sum()), 4),
                         "predict_rows_per_second": round(len(Xv) / predict_seconds)})
            print(json.dumps(rows[-1]), flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    if args.json:
        payload = {"benchmark": "deep_device_check", "torch": torch.__version__, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
