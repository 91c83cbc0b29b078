"""The three parts of the project: the program and its commands, the test bench, the engine.

The import contracts live in pyproject.toml ([tool.importlinter]); .ci/product-alone proves
the other half, that the product's tests pass in a copy without bench/ and engine/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.project import ROOT


def test_the_import_contracts_hold() -> None:
    """pyproject's [tool.importlinter]: three layers (the bench over the product's commands
    over the program, never upwards), the product's tests never import the bench, the
    product never imports its tests, and no package has an import cycle among its modules
    (there were two: settings <-> matrix, and lock <-> releases <-> scenarios)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout
