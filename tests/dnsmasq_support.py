"""A private dnsmasq on a loopback port: a real DNS server for discovery tests.

It answers only the TXT records it is given (`--no-resolv --no-hosts`): every other name is
refused, and nothing is asked of any other server.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dns.exception
import dns.message
import dns.query

DNSMASQ = "dnsmasq"


def unavailable_reason() -> str | None:
    if shutil.which(DNSMASQ) is None and not Path("/usr/sbin/dnsmasq").exists():
        return "dnsmasq is not installed (Debian: apt-get install -y dnsmasq-base)"
    return None


def _executable() -> str:
    return shutil.which(DNSMASQ) or "/usr/sbin/dnsmasq"


def free_udp_port(address: str = "127.0.0.1") -> int:
    """A port free for UDP and for TCP (dnsmasq listens on both): one free for UDP alone
    may be another server's TCP port, and dnsmasq would exit with "Address in use"."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
            port: int = sock.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
            return port
    raise AssertionError("found no port free for both UDP and TCP")


def _answers(address: str, port: int) -> bool:
    query = dns.message.make_query("ready.invalid.", "TXT")
    try:
        dns.query.udp(query, address, port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return False
    return True


@contextlib.contextmanager
def running_dnsmasq(
    txt_records: Mapping[str, str],
    workdir: Path,
    address: str = "127.0.0.1",
    *,
    options: Sequence[str] = (),
) -> Iterator[tuple[str, int]]:
    """dnsmasq serving `txt_records` (name -> text) on a free port; yields (address, port).

    `options` are more dnsmasq options, such as `--srv-host=...` or `--host-record=...`.
    """
    port = free_udp_port(address)
    command = [
        _executable(),
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={address}",
        f"--port={port}",
        f"--pid-file={workdir / 'dnsmasq.pid'}",
        "--log-facility=-",
        "--log-queries",
    ]
    command += [f"--txt-record={name},{text}" for name, text in txt_records.items()]
    command += list(options)
    log_path = workdir / f"dnsmasq-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while not _answers(address, port):
            if process.poll() is not None:
                raise AssertionError(f"dnsmasq exited: {log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError("dnsmasq did not answer within 10 s")
            time.sleep(0.02)  # polling interval of a condition with a deadline
        yield address, port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
