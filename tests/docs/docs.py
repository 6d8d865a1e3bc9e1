"""The documentation files the tests in this folder read, and the bits of markdown they need."""

import re
from pathlib import Path

from tests.helpers import ROOT

README = ROOT / "README.md"
MODEL_CARD = ROOT / "model" / "README.md"
NOTEBOOK = ROOT / "lab" / "notebook.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
ALL = [README, *PAGES, MODEL_CARD, NOTEBOOK]
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def prose(markdown: str) -> str:
    """The markdown without its fenced code blocks (lines kept, so line numbers still match)."""
    return FENCE.sub(lambda m: "\n" * m[0].count("\n"), markdown)


def bash_commands(markdown: str) -> list[str]:
    """Every command line of the ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands
