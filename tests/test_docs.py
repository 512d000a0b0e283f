"""The docs tell the truth about the code: every repository path and Python name they write in
backticks exists, every page is in the nav, and each file a page includes is there.

(`make docs` builds the site with `mkdocs build --strict`, which checks links and anchors; the
API examples are checked against the OpenAPI models in tests/test_openapi.py.)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).parents[1]
DOCS = REPO / "docs"
# Top-level folders a repository path in the docs starts with.
ROOTS = ("bot", "handlers", "telephony", "storage", "tests", "bench", "deploy", "examples", "docs")
PACKAGES = ("bot", "handlers", "telephony", "storage")
# Files at the top of the repository the docs name.
TOP_FILES = {"Makefile", "Dockerfile", "compose.yaml", "pyproject.toml", "mkdocs.yml", "LICENSE"}
TOP_FILES |= {".env.example", ".ci/run", "README.md"}

CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^(?:" + "|".join(ROOTS) + r")/[\w./{},-]*$")
DOTTED = re.compile(r"^(?:" + "|".join(PACKAGES) + r")(?:\.\w+)+$")
BRACES = re.compile(r"\{([^{}]*)\}")


def pages() -> list[Path]:
    """README.md and every page of docs/: the text a reader may find a fact in."""
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def documentation() -> str:
    return "\n\n".join(page.read_text(encoding="utf-8") for page in pages())


def _expand(path: str) -> Iterator[str]:
    """`telephony/calls/{inbox,apply}.py` → each path it stands for."""
    found = BRACES.search(path)
    if found is None:
        yield path
        return
    for choice in found.group(1).split(","):
        yield from _expand(path[: found.start()] + choice + path[found.end() :])


def _spans(text: str) -> Iterator[str]:
    """Backticked spans outside fenced code blocks (a shell or YAML example is not a claim)."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield from CODE.findall(line)


def named_paths(text: str) -> set[str]:
    paths: set[str] = set()
    for span in _spans(text):
        span = span.strip()
        if span in TOP_FILES or PATH.match(span):
            paths.update(_expand(span.rstrip("/")))
    return paths


def named_objects(text: str) -> set[str]:
    return {span for span in _spans(text) if DOTTED.match(span)}


def resolves(dotted: str) -> bool:
    """`telephony.calls.inbox.CallInbox`: the longest module prefix imports, the rest are
    attributes of it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_every_path_a_page_names_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = sorted(path for path in named_paths(text) if not (REPO / path).exists())
    assert missing == []


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_every_python_name_a_page_names_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert sorted(name for name in named_objects(text) if not resolves(name)) == []


def test_the_checks_catch_a_wrong_path_and_a_wrong_name() -> None:
    text = (
        "`telephony/calls/{inbox,nowhere}.py`, `storage/queue.py`, `trubka.toml`\n"
        "```sh\n`bot/in_a_fence.py`\n```\n"
        "`telephony.calls.inbox.CallInbox`, `telephony.calls.inbox.Nothing`"
    )
    assert named_paths(text) == {
        "telephony/calls/inbox.py",
        "telephony/calls/nowhere.py",
        "storage/queue.py",
    }
    assert not (REPO / "telephony/calls/nowhere.py").exists()
    assert [name for name in sorted(named_objects(text)) if not resolves(name)] == [
        "telephony.calls.inbox.Nothing"
    ]


def _nav_files(entries: list[object]) -> Iterator[str]:
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from _nav_files(value) if isinstance(value, list) else [str(value)]


def test_every_page_is_in_the_nav_and_the_architecture_comes_first() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = list(_nav_files(config["nav"]))
    assert nav[0] == "architecture.md"
    on_disk = {page.name for page in DOCS.glob("*.md")} - {"index.md"}  # the landing page
    assert sorted(nav) == sorted(on_disk)


def test_the_readme_stays_a_front_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "make run" in readme and "make test" in readme
    image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert image is not None and (REPO / image.group(1)).is_file()
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link


def test_included_files_exist() -> None:
    for page in DOCS.glob("*.md"):
        for included in re.findall(r'--8<-- "([^"]+)"', page.read_text(encoding="utf-8")):
            assert (REPO / included).is_file(), (page.name, included)
