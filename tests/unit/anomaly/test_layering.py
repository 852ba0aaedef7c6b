"""Services never import the tool layer (`citystream`): the anomaly CLI's label scoring lives in services/anomaly
and the simulator imports it from there, not the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[3] / "services"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_service_module_imports_the_citystream_tools():
    offenders = {str(path.relative_to(SERVICES.parent)): sorted(m for m in imported_modules(path)
                                                                if m == "citystream" or m.startswith("citystream."))
                 for path in SERVICES.rglob("*.py")}
    assert {path: modules for path, modules in offenders.items() if modules} == {}
    assert len(offenders) > 50, "the scan saw the services' modules"
