"""The docs stay true: README within its size, nothing pointing outside the repository, the
benchmark tables generated from their JSON, every package of the tree in docs/architecture.md."""

import re
import subprocess
import sys

from tests.conftest import REPO


def test_readme_is_at_most_15_kb_and_links_stay_in_the_repository():
    assert (REPO / "README.md").stat().st_size <= 15 * 1024
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        text = page.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, page
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_benchmark_tables_are_generated_from_their_json():
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_tables.py"),
                            "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_architecture_page_names_every_package():
    text = (REPO / "docs" / "architecture.md").read_text()
    packages = [p.name for p in (REPO / "clv_models").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()]
    assert packages
    for name in packages:
        assert f"clv_models/{name}/" in text, name
