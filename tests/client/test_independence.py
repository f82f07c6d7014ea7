"""The client imports nothing of the server: the import-linter contract names every other
part of the `buddycloud` package, including parts added later."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import buddycloud

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def test_the_client_contract_forbids_every_other_part_of_the_package() -> None:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    [contract] = [c for c in contracts if c.get("source_modules") == ["buddycloud.client"]]
    parts = {f"buddycloud.{module.name}" for module in pkgutil.iter_modules(buddycloud.__path__)}
    missing = parts - {"buddycloud.client"} - set(contract["forbidden_modules"])
    assert not missing, f"add {sorted(missing)} to the client's import-linter contract"
