"""The tests' own layout, as a checked contract (read from the source, nothing imported): no test module imports
another test module. Importing one runs its module-level code and, for a fixture, gives the importer a copy of it
under the same name; what several modules share lives in a home made for it: tests/unit/fakes.py, or
tests/component/helpers.py and tests/component/conftest.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _test_modules_imported(path: Path) -> list[tuple[str, int]]:
    """(module, line) of each import in ``path`` that names a ``test_*`` module, relative or absolute."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if _is_test(base):
                names = [base]
            else:  # ``from . import test_x`` or ``from tests.unit import test_x``
                names = [f"{base}{'.' if node.module else ''}{alias.name}" for alias in node.names]
        else:
            continue
        found += [(name, node.lineno) for name in names if _is_test(name)]
    return found


def _is_test(module: str) -> bool:
    return module.rpartition(".")[2].startswith("test_")


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {name}"
        for path in sorted(TESTS.rglob("test_*.py"))
        for name, line in _test_modules_imported(path)
    ]
    assert offenders == []


def test_the_check_sees_relative_absolute_and_package_imports_of_a_test_module(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "import os\n"
        "from .helpers import call_api\n"
        "from .test_worker import job\n"
        "from tests.unit.test_delivery import World\n"
        "from . import test_other, fakes\n"
        "import tests.component.test_ws_gateway\n"
        "from tests.unit import test_dlq\n"
        "from .testing import x\n"
    )
    assert _test_modules_imported(module) == [
        (".test_worker", 3),
        ("tests.unit.test_delivery", 4),
        (".test_other", 5),
        ("tests.component.test_ws_gateway", 6),
        ("tests.unit.test_dlq", 7),
    ]
