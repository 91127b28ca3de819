"""Train the deep ZILN model on CPU and, where present, CUDA on the same synthetic rows.

Checks that the CUDA path (bf16 autocast, training set on the GPU) learns as well as the CPU
path and reports training throughput per device. A thin wrapper over the measurement of
``clv bench training`` (:func:`clv_models.bench.models.deep_throughput`), with several batch
sizes and a tabular-only variant. Not a test: run it by hand, e.g.

    python scripts/deep_device_check.py --rows 1000000 --epochs 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clv_models.bench.models import deep_throughput, resolve_devices  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-sizes", default="2048,16384")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: the CPU, and CUDA when present")
    parser.add_argument("--tabular-only", action="store_true",
                        help="numeric columns only (no sequences, no categoricals)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    rows = deep_throughput(args.rows, args.epochs, [int(b) for b in args.batch_sizes.split(",")],
                           resolve_devices(args.device), sequences=not args.tabular_only,
                           validation_rows=100_000,
                           echo=lambda line: print(line, file=sys.stderr, flush=True))
    for row in rows:
        print(json.dumps(row), flush=True)
    print(pd.DataFrame(rows).drop(columns=["measure"]).to_string(index=False))
    if args.json:
        payload = {"benchmark": "deep_device_check", "torch": torch.__version__, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
