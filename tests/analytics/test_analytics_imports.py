"""Each analytics module imports on its own, and never pulls in ingest or storefront_adapters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import analytics

PACKAGE = Path(analytics.__file__).parent
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
    for p in PACKAGE.rglob("*.py")
    if p.stem != "__init__"
)


@pytest.mark.parametrize("module", ["analytics", *MODULES])
def test_imports_alone_without_other_packages(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(roots & {'ingest', 'storefront_adapters'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=PACKAGE.parent)


def test_front_door_exports_exist() -> None:
    assert analytics.__file__ == str(PACKAGE / "__init__.py")
    for name in analytics.__all__:
        assert hasattr(analytics, name), name
