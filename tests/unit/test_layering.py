"""The common package's layering, as a checked contract (read from the source, nothing imported).

- The domain (every module outside ``notify.adapters``) imports no adapter and no AWS, Kafka or HTTP library:
  services depend on ports, and the composition roots in ``functions/`` wire the adapters in.
- An adapter imports no service: what both need (a limit, a record) lives in a neutral module.
- No import cycle among the package's modules at import time (``TYPE_CHECKING`` blocks and imports inside
  functions, made on first use, are not import-time edges).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "layers" / "common"
PACKAGE = ROOT / "notify"
# Libraries only adapters may import.
INFRASTRUCTURE = ("boto3", "botocore", "kafka", "httpx", "httpcore", "aws_msk_iam_sasl_signer", "mypy_boto3")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, import_time_only: bool) -> list[tuple[str, int]]:
    """(module, line) of each absolute import; with ``import_time_only``, the module-level ones outside ``if``s."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if import_time_only else list(ast.walk(tree))
    found: list[tuple[str, int]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_the_modules_are_found() -> None:
    assert {"notify.services.delivery", "notify.adapters.ses", "notify.ports", "notify.limits"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("notify.adapters")))
def test_the_domain_imports_no_adapter_and_no_infrastructure(module: str) -> None:
    wrong = [
        f"line {line}: {name}"
        for name, line in _imports(MODULES[module], import_time_only=False)
        if name.startswith("notify.adapters") or name.split(".")[0] in INFRASTRUCTURE
    ]
    assert not wrong, f"{module} imports {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("notify.adapters")))
def test_an_adapter_imports_no_service(module: str) -> None:
    wrong = [
        f"line {line}: {name}"
        for name, line in _imports(MODULES[module], import_time_only=False)
        if name.startswith("notify.services")
    ]
    assert not wrong, f"{module} imports {wrong}"


def test_no_import_cycle() -> None:
    graph = {
        module: {name for name, _ in _imports(path, import_time_only=True) if name in MODULES and name != module}
        for module, path in MODULES.items()
    }
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(path[path.index(module) :] + [module])
            return
        if module in done:
            return
        for dependency in sorted(graph[module]):
            visit(dependency, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)
