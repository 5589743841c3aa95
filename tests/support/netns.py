"""Hosts on one machine: a Linux network namespace per host, linked to the machine's own
namespace (where PostgreSQL runs) by a veth pair. `cut()` takes the link down, so the host's
packets go nowhere (a partition: no reset, no error, just silence) and `restore()` brings it
back with its TCP connections intact.

PostgreSQL here listens on 127.0.0.1 only, which another namespace cannot reach: a `socat`
relay on the link's address forwards to it. Needs root, iproute2 and socat; `unavailable()`
says why not where any is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.procs import ROOT


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def unavailable() -> str | None:
    """None if this machine can build hosts, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install -y iproute2 socat)"
    probe = f"ssprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip(
            "link",
            "add",
            f"sp{os.getpid() % 100000}",
            "type",
            "veth",
            "peer",
            "name",
            f"spx{os.getpid() % 100000}",
        )
    except subprocess.CalledProcessError as exc:
        return f"the kernel refused a network namespace or veth pair: {exc.stderr.strip()}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", f"sp{os.getpid() % 100000}")
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", probe)
    return None


class Host:
    """One host: namespace `ns`, reaching PostgreSQL at `addr`:`port` over its veth."""

    def __init__(self, n: int, pg_host: str = "127.0.0.1", pg_port: int = 5432):
        k = self._claim(n)  # this host's names and subnet are free on the machine
        tag = f"{k:03d}{n}"
        self.link = f"sr{tag}"  # the machine's end; the host's end is "sh{tag}"
        net = f"10.{200 + n}.{k}"
        self.addr, self.host_addr = f"{net}.1", f"{net}.2"
        self.port = 15432
        try:
            _ip("link", "add", self.link, "type", "veth", "peer", "name", f"sh{tag}")
            _ip("link", "set", f"sh{tag}", "netns", self.ns)
            _ip("addr", "add", f"{self.addr}/24", "dev", self.link)
            _ip("link", "set", self.link, "up")
            _ip("-n", self.ns, "addr", "add", f"{self.host_addr}/24", "dev", f"sh{tag}")
            _ip("-n", self.ns, "link", "set", f"sh{tag}", "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
            self.relay = subprocess.Popen(
                [
                    "socat",
                    f"TCP-LISTEN:{self.port},bind={self.addr},fork,reuseaddr",
                    f"TCP:{pg_host}:{pg_port}",
                ],
                stderr=subprocess.DEVNULL,
            )
        except BaseException:
            self.close()
            raise

    def _claim(self, n: int) -> int:
        """A number k whose namespace `ss{k}{n}` this call created: `ip netns add` fails for a
        name that exists, so tests running side by side (pytest-xdist workers, two runs) never
        share a namespace, a link name or a subnet (all three are made from k and n)."""
        for step in range(250):
            k = (os.getpid() + step) % 250
            try:
                _ip("netns", "add", f"ss{k:03d}{n}")
            except subprocess.CalledProcessError:
                continue
            self.ns = f"ss{k:03d}{n}"
            return k
        raise RuntimeError(f"no free network namespace name for host {n}")

    def db_url(self, url: str) -> str:
        """The database URL as this host reaches it."""
        return make_url(url).set(host=self.addr, port=self.port).render_as_string(False)

    def python(self, log: Path, *args: str, **env) -> subprocess.Popen:
        """`python *args` on this host (its pid is the process's own: `ip netns exec` execs)."""
        full = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, *args],
            cwd=ROOT,
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "a"),  # noqa: SIM115 - the child owns it
        )

    def cut(self) -> None:
        _ip("link", "set", self.link, "down")

    def restore(self) -> None:
        _ip("link", "set", self.link, "up")

    def close(self) -> None:
        relay = getattr(self, "relay", None)
        if relay is not None:
            relay.terminate()
            relay.wait(10)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.link)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.ns)
