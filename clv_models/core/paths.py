"""Where the shipped dbt project (``warehouse/``) and Feast repository (``feature_repo/``) are.

In a source checkout they are the folders beside ``clv_models/``, so edits to the models and
feature definitions take effect at once. An installed wheel carries copies of both inside the
package (``clv_models/project/``, written by the build: ``setup.py``), so ``clv`` finds them
from any directory. dbt writes its ``target/`` and logs under the data directory
(:meth:`clv_models.core.config.Config.env`), never into the project folder, which may be
read-only in an installed package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Where a wheel install keeps its copies of the project folders.
PACKAGED_PROJECT = PACKAGE_DIR / "project"
WAREHOUSE = "warehouse"
FEATURE_REPO = "feature_repo"
#: A file that marks each folder as the real thing.
_MARKERS = {WAREHOUSE: "dbt_project.yml", FEATURE_REPO: "feature_store.yaml"}


def source_checkout() -> Path | None:
    """The repository root when the package runs from a source checkout, else ``None``."""
    root = PACKAGE_DIR.parent
    if (root / WAREHOUSE / _MARKERS[WAREHOUSE]).exists() and (root / "pyproject.toml").exists():
        return root
    return None


def project_folder(name: str) -> Path:
    """The folder ``warehouse`` or ``feature_repo``: the checkout's, else the packaged copy.

    Raises
    ------
    FileNotFoundError
        When neither exists (a broken install).
    """
    root = source_checkout()
    candidates = ([root / name] if root else []) + [PACKAGED_PROJECT / name]
    for folder in candidates:
        if (folder / _MARKERS[name]).exists():
            return folder
    raise FileNotFoundError(f"the {name}/ folder is missing from the installed package "
                            f"(looked in {', '.join(map(str, candidates))}): reinstall clv-models")
