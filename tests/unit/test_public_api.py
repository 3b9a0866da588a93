"""Each package's curated exports are the public way in, and importing one stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ("models", "connectors", "streamer.engine", "streamer.config", "streamer.service")


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_is_the_object_its_module_defines(name: str) -> None:
    package = importlib.import_module(name)
    exports = package._EXPORTS
    assert sorted(package.__all__) == sorted(exports)
    for export in package.__all__:
        defined = getattr(importlib.import_module(exports[export]), export)
        assert getattr(package, export) is defined
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        package.Nothing  # noqa: B018 - the attribute access is the test


def test_importing_the_packages_loads_no_heavy_dependency() -> None:
    """`from models import LastValue` must not cost torch's start-up (seconds)."""
    code = (
        "import sys\n"
        "from models import LastValue, Forecaster\n"
        "from connectors import Source, Output\n"
        "from streamer.config import StreamerConfig\n"
        "heavy = {'torch', 'kafka', 'paho', 'river', 'influxdb_client'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
