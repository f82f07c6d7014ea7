"""The JavaScript SDK (sdk/js): its own test suite, `npm test`, run against a real
`buddycloud serve` started from this environment's executable.

`npm test` checks the TypeScript types with `tsc --noEmit`, then runs Node's test runner:
REST operations, live events and a resume after a dropped connection (sdk/js/README.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk" / "js"
MIN_NODE = 18
# Node's test runner's closing counts: `# pass 25` (TAP) or `ℹ pass 25` (spec reporter).
COUNT = re.compile(r"^(?:# |ℹ )(pass|fail|skipped|todo|cancelled) (\d+)$", re.MULTILINE)


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, (
        "node and npm are needed for the JavaScript SDK's tests (.ci/run installs them)"
    )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= MIN_NODE, f"Node {MIN_NODE} or newer is needed, found {version.stdout.strip()}"
    return node, npm


def _tail(output: str, lines: int = 80) -> str:
    return "\n".join(output.splitlines()[-lines:])


def test_the_javascript_sdk_passes_its_tests_against_a_real_server() -> None:
    _, npm = _tools()
    env = {
        **os.environ,
        "BUDDYCLOUD_BIN": str(Path(sys.executable).parent / "buddycloud"),
        "NO_COLOR": "1",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    install = subprocess.run(
        [npm, "ci"], cwd=SDK, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert install.returncode == 0, f"npm ci failed:\n{_tail(install.stdout + install.stderr)}"
    run = subprocess.run(
        [npm, "test"],
        cwd=SDK,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"npm test failed:\n{_tail(output)}"
    counts = {name: int(value) for name, value in COUNT.findall(output)}
    assert counts.get("fail") == 0, _tail(output)
    assert counts.get("skipped", 0) == 0 and counts.get("todo", 0) == 0, _tail(output)
    # The suite's tests ran: REST, live events with resume, the token contract.
    assert counts.get("pass", 0) >= 20, _tail(output)
