"""The docs derived from code are current, and the README names every setting."""

from pathlib import Path

import pytest

from creditrisk_assets.docs import GENERATED
from creditrisk_assets.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.name)
def test_generated_files_are_current(path: Path) -> None:
    assert path.read_text() == GENERATED[path](), f"run: python -m creditrisk_assets.docs ({path.name} is stale)"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [r["variable"] for r in Settings().describe() if f"`{r['variable']}`" not in readme]
    assert not missing, f"README settings table lacks {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:1200]
    assert "make demo" in head and "make test" in head


def test_docs_name_no_setting_that_does_not_exist() -> None:
    """A renamed or removed setting must leave the README, docs and infra too (prefixes like
    ``CREDITRISK_GATE_*`` are fine)."""
    import re

    known = {r["variable"] for r in Settings().describe()}
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "infra").rglob("*.yaml"))]
    stale = {f"{p.relative_to(ROOT)}: {v}" for p in paths
             for v in re.findall(r"CREDITRISK_[A-Z0-9_]+", p.read_text()) if v not in known and not v.endswith("_")}
    assert not stale, sorted(stale)
