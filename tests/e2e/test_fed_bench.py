"""The federation benchmark's machinery, at a tiny scale, so that it keeps working.

`python -m bench.fed_bench` (docs/benchmarks.md) is run by hand with 1,000 followers; here
it runs with 3, one short round: two federating Prosody instances, both channel servers,
the s2s counter, the routing components and the report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from buddycloud.prosody import is_installed

ROOT = Path(__file__).resolve().parents[2]


def row(report: str, measure: str) -> str:
    """The result cell of the table row whose measure starts with `measure`."""
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith(measure):
            return cells[1]
    raise AssertionError(f"no row {measure!r} in:\n{report}")


def number(cell: str) -> float:
    found = re.search(r"[\d,]+(?:\.\d+)?", cell)
    assert found, cell
    return float(found.group(0).replace(",", ""))


def test_the_federation_benchmark_reports_delivery_and_counts_s2s_stanzas() -> None:
    if not is_installed():
        pytest.skip("the federation benchmark needs Prosody 0.12 (apt-get install -y prosody)")
    followers = 3
    done = subprocess.run(
        [sys.executable, "-m", "bench.fed_bench", "--followers", str(followers), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = done.stdout
    mode = re.search(r"^Mode: (per-user|inbox)", report, re.M)
    assert mode, report
    # The counter saw each message of the ceiling cross exactly once.
    check = re.search(r"counted ([\d., ]+) stanza\(s\) per message", report)
    assert check and {float(x) for x in check.group(1).split(",")} == {1.0}, report
    assert number(row(report, "s2s routing ceiling")) > 0
    assert number(row(report, "cross-domain notifications/s")) > 0
    per_post = number(row(report, "s2s stanzas per post, capulet.lit -> montague.lit (one"))
    single = number(row(report, "s2s stanzas per post, capulet.lit -> montague.lit, posts sent"))
    if mode.group(1) == "per-user":
        # capulet.lit's server notifies each remote follower itself: one s2s stanza each.
        assert per_post == single == followers
    else:
        # montague.lit's server gets each post once, or several posts in one batch.
        assert 0 < per_post <= 1
        assert single == 1
    latency = row(report, "latency, post to first / last follower")
    assert number(latency.split("/")[1]) > 0
