"""The docs hold together: every relative link and image in the README, docs/, the model card and the lab notebook
resolves to a file (and an `#anchor` into a markdown file to one of its headings, as GitHub names them); the
pages stay short enough to read; lines stay readable; and the reader's docs speak in the present tense."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.docs.docs import ALL, MODEL_CARD, NOTEBOOK, PAGES, README, name, prose, text

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1", re.S)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
URL = re.compile(r"https?://\S+")
PROSE_WIDTH, TABLE_WIDTH = 120, 400
# Words that tell the project's history rather than what it is (the notebook is the place for history).
HISTORY = re.compile(
    r"\b(issue|issues) #?\d+|#\d{1,4}\b|\bwave\b|\baudit\b|adversarial run|\bwas\b|since the last round|\bnow\b", re.I
)


def links(markdown: str) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link, image and HTML link outside code."""
    found = []
    for number, line in enumerate(prose(markdown).splitlines(), 1):
        line = INLINE_CODE.sub("", line)
        found += [(number, target) for target in LINK.findall(line) + HTML_LINK.findall(line)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces as hyphens."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    heading = re.sub(r"<[^>]+>", "", heading)
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, heading in HEADING.findall(prose(markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    broken = []
    for number, target in links(text(path)):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{name(path)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where} (no such file)")
        elif fragment and resolved.suffix == ".md" and unquote(fragment).lower() not in anchors(text(resolved)):
            broken.append(f"{where} (no such heading in {resolved.name})")
    return broken


@pytest.mark.parametrize("path", ALL, ids=name)
def test_every_relative_link_resolves(path):
    assert path.is_file(), name(path)
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    """The checker itself: a missing file, a missing heading and a good link, side by side."""
    (tmp_path / "other.md").write_text("# Other page\n\n## The memory bound (48 MP)\n\n```bash\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-memory-bound-48-mp) [`code`](other.md) ![img](missing.png)\n"
        "[bad anchor](other.md#not-a-heading) [self](#a-title) `[not a link](nowhere.md)`\n\n# A title\n"
    )
    broken = broken_links(page)
    assert len(broken) == 2, broken
    assert "missing.png (no such file)" in broken[0] and "#not-a-heading (no such heading" in broken[1]


def test_slugs_follow_githubs_rules():
    assert slug("Deploy parameters (`--param`, AWS)") == "deploy-parameters---param-aws"
    assert slug("1–2. Warm latency per request, by stage, and the book's stack side by side") == (
        "12-warm-latency-per-request-by-stage-and-the-books-stack-side-by-side"
    )
    assert anchors("# Usage\n## Usage\n") == {"usage", "usage-1"}


def _lines(path: Path) -> int:
    return len(text(path).splitlines())


def test_the_size_rules():
    """A newcomer reads the README and the model card in minutes; each page stays one concern."""
    assert _lines(README) <= 150, f"README.md: {_lines(README)} lines"
    assert _lines(MODEL_CARD) <= 150, f"model/README.md: {_lines(MODEL_CARD)} lines"
    assert len(PAGES) >= 6, [name(p) for p in PAGES]
    assert (PAGES[0].parent / "index.md").is_file()
    long_pages = {name(p): _lines(p) for p in PAGES if _lines(p) > 400}
    assert long_pages == {}


@pytest.mark.parametrize("path", ALL, ids=name)
def test_lines_stay_readable(path):
    """Prose and code wrap at 120 characters (a URL may run past it); a table row stays under 400."""
    wide = []
    for number, line in enumerate(text(path).splitlines(), 1):
        limit = TABLE_WIDTH if line.startswith("|") else PROSE_WIDTH
        if len(URL.sub("", line)) > limit:
            wide.append(f"{name(path)}:{number}: {len(line)} characters")
    assert wide == []


@pytest.mark.parametrize("path", [p for p in ALL if p != NOTEBOOK], ids=name)
def test_the_docs_say_what_is_not_what_was(path):
    """History (issue numbers, rounds, what changed) belongs in the lab notebook and git, not in the docs."""
    found = [
        f"{name(path)}:{number}: {match[0]!r}"
        for number, line in enumerate(text(path).splitlines(), 1)
        for match in [HISTORY.search(re.sub(r"\]\([^)]*\)", "]", URL.sub("", line)))]
        if match
    ]
    assert found == []
