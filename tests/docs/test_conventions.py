"""What docs/development.md's conventions promise of the code, checked on every module of the serving core, the
adapters, the CLI, the scripts and the lab: at most 400 lines a module and 60 a function, `sys.exit` only in a
`main()` or under `if __name__ == "__main__"`, and imports that point one way (`core/` needs none of its callers, the
lab nothing of the CLI or the adapters)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

FOLDERS = ("core", "handlers", "gcp", "azure", "cli", "lab", "scripts")
MODULE_LINES, FUNCTION_LINES = 400, 60
# What each folder must not import: the folders that call it. (`azure.functions` and `azure.storage` are the SDK.)
NOT_IMPORTED_BY = {
    "core": {"handlers", "gcp", "azure", "cli", "lab", "scripts", "bench", "tests"},
    "lab": {"handlers", "gcp", "azure", "cli", "tests"},
}


def sources() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


def long_functions(tree: ast.Module) -> list[str]:
    lengths = [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]  # a list, not a dict: two methods of one name in a module are two functions
    return [f"{name} ({lines} lines)" for name, lines in lengths if lines > FUNCTION_LINES]


def _is_sys_exit(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "exit"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "sys"
    )


def _is_main_guard(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)


def stray_exits(tree: ast.Module) -> list[str]:
    """`sys.exit` calls outside a function named main and outside the module's `__main__` guard: a helper that
    exits cannot be tested in-process, and its caller cannot turn the failure into one line."""
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_main_guard(child) and where == "<module>":
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if _is_sys_exit(child) and where != "main":
                found.append(f"{where}:{child.lineno}")
            visit(child, where)

    visit(tree, "<module>")
    return found


def imported_folders(tree: ast.Module) -> set[str]:
    """The project's own top-level folders a module imports (absolute imports; the Azure SDK is not azure/)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    folders = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "azure" and len(parts) > 1 and not (ROOT / "azure" / f"{parts[1]}.py").exists():
            continue  # azure.functions, azure.storage.blob...: the SDK
        if (ROOT / parts[0]).is_dir():
            folders.add(parts[0])
    return folders


@pytest.fixture(scope="module")
def trees() -> dict[str, tuple[int, ast.Module]]:
    parsed = {}
    for path in sources():
        text = path.read_text()
        parsed[str(path.relative_to(ROOT))] = (len(text.splitlines()), ast.parse(text))
    return parsed


def test_every_folder_is_checked(trees):
    assert {name.split("/")[0] for name in trees} == set(FOLDERS) and len(trees) > 80


def test_modules_and_functions_stay_short(trees):
    long_modules = {name: lines for name, (lines, _) in trees.items() if lines > MODULE_LINES}
    assert long_modules == {}
    assert {name: found for name, (_, tree) in trees.items() if (found := long_functions(tree))} == {}


def test_only_main_exits(trees):
    assert {name: found for name, (_, tree) in trees.items() if (found := stray_exits(tree))} == {}


@pytest.mark.parametrize("folder", sorted(NOT_IMPORTED_BY))
def test_imports_point_one_way(trees, folder):
    wrong = {
        name: sorted(imported_folders(tree) & NOT_IMPORTED_BY[folder])
        for name, (_, tree) in trees.items()
        if name.startswith(f"{folder}/")
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_the_checks_catch_what_they_look_for():
    """The checkers themselves, on a module that breaks each rule once and keeps each once."""
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    source = (
        "import sys\nimport azure.functions\nfrom core import model\nimport cli.bulk\n"
        f"def too_long():\n{body}\n"
        "def helper():\n    sys.exit(1)\n"
        "def main():\n    sys.exit(0)\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    tree = ast.parse(source)
    assert long_functions(tree) == [f"too_long ({FUNCTION_LINES + 1} lines)"]
    assert stray_exits(tree) == [f"helper:{FUNCTION_LINES + 7}"]
    assert imported_folders(tree) == {"core", "cli"}
