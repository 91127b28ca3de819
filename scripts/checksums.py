"""Print the checksums of a data directory as JSON: raw files, warehouse tables, score sets,
feature exports, the online store, models, metrics and the BI copy.

One checksum per table, file, scored set, feature view and model, independent of row order;
run-specific columns (``scored_at``, ``run_id``) and times are left out, so two runs on the same
input and seed print the same JSON (the determinism check of ``docs/reliability.md``)::

    python scripts/checksums.py --data-dir data > a.json
    python scripts/checksums.py --data-dir data --section warehouse --section models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clv_models.core.config import load_config  # noqa: E402
from tests.harness import checksums  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="clv.yaml (default: ./clv.yaml if present)")
    parser.add_argument("--data-dir", type=Path, help="the data directory (default: ./data)")
    parser.add_argument("--section", dest="sections", action="append",
                        choices=checksums.SECTIONS, help="only these sections (repeatable)")
    args = parser.parse_args(argv)
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    cfg = load_config(args.config, overrides)
    result = checksums.compute(cfg, tuple(args.sections or checksums.SECTIONS))
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
