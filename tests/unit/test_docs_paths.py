"""The README, ARCHITECTURE.md, CONTRIBUTING.md and docs/ point only at files that exist in
the repository: a newcomer who follows a path finds it, and nothing points outside."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    REPO / "README.md",
    REPO / "ARCHITECTURE.md",
    REPO / "CONTRIBUTING.md",
    REPO / "sim" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]
# Where a path written relative to a folder of the package is looked up.
BASES = [
    REPO,
    REPO / "orchestrator_operator",
    REPO / "orchestrator_operator" / "monitor",
    REPO / "docs",
]
# Made at run time, not kept in git.
GENERATED = ("ui/dist", "build/", ".testenv", "artifacts/", "~/", ".venv")
SOURCE = re.compile(r"^[\w.{},/-]+\.(py|md|sh|yaml|yml|json|toml|ts|tsx|mjs|cfg)$|^[\w.-]+/$")


def _expand(path: str) -> list[str]:
    """`a/{b,c}.py` -> a/b.py, a/c.py."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def _referenced_paths(doc: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        for token in re.findall(r"`([^`\s]+)`", line):
            token = token.split(":")[0].rstrip(".,;)")
            if token.startswith("/") or token.startswith(GENERATED):
                continue  # URL paths, and what a run makes
            if "/" in token and SOURCE.match(token):
                found.append((number, token))
    return found


def test_every_path_the_docs_name_exists() -> None:
    missing = []
    for doc in DOCS:
        assert doc.exists(), doc
        for number, token in _referenced_paths(doc):
            for path in _expand(token):
                if not any((base / path).exists() for base in BASES):
                    missing.append(f"{doc.relative_to(REPO)}:{number}: {path}")
    assert missing == []


def test_nothing_points_outside_the_repository() -> None:
    outside = [
        f"{doc.relative_to(REPO)}:{number}: {line.strip()}"
        for doc in DOCS
        for number, line in enumerate(doc.read_text().splitlines(), 1)
        if "../" in line
    ]
    assert outside == []


def test_the_checker_sees_a_wrong_path() -> None:
    assert _expand("operator/builders/{cluster,nope}.py") == [
        "operator/builders/cluster.py",
        "operator/builders/nope.py",
    ]
    assert not any((base / "operator/builders/nope.py").exists() for base in BASES)
