"""A lab command's result: the one JSON form it is printed and kept in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def show_report(result: Any, path: Path | None) -> None:
    """``result`` on stdout as indented JSON, and written to ``path`` as well when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
