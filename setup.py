"""Build hook: ship the dbt project and the Feast repository inside the wheel.

``warehouse/`` and ``feature_repo/`` live at the top of the repository, beside the package. A
wheel copies them to ``clv_models/project/`` so an installed ``clv`` finds them from any
directory (:mod:`clv_models.core.paths`); a source checkout keeps using the folders themselves.
Everything else is configured in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROJECT_FOLDERS = ("warehouse", "feature_repo")
#: What dbt, Feast and Python leave in those folders: never shipped.
IGNORED = shutil.ignore_patterns("target", "logs", "dbt_packages", "data", "__pycache__",
                                 ".user.yml", "*.duckdb*", "*.parquet", "*.db")


class BuildWithProject(build_py):
    """``build_py`` that also copies the project folders into the built package."""

    def run(self) -> None:
        super().run()
        for name in PROJECT_FOLDERS:
            target = Path(self.build_lib) / "clv_models" / "project" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=IGNORED)


setup(cmdclass={"build_py": BuildWithProject})
