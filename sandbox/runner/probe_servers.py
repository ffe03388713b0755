"""Runs in the runner: its probe servers (child.server_main, snapshot.py), one per set of modules; it
trusts none of them, and reads a server's word (took the probe, serves again) as untrusted.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from sandbox.runner import child
from sandbox.runner.child import POSITION, SERVER_ACCEPTED, ProbeAt
from sandbox.runner.protocol import PlanDocument, ProbeEntry
from sandbox.runner.supervisor import kill_group


@dataclass(frozen=True)
class ServerKey:
    """What a server's process imports, in order, and what it may not: probes share a server only if
    both are the same."""

    modules: tuple[str, ...]
    forbidden: tuple[str, ...]


@dataclass
class ProbeServer:
    pid: int
    control: socket.socket
    key: ServerKey


class ProbeServers:
    """The run's probe servers, one per set of modules a probe imports (a module's import probe names
    its dependencies too: `fc_net` probes share the server of the import probe of `fc_net`)."""

    def __init__(
        self,
        plan: PlanDocument,
        pkg_root: Path,
        probe_at: ProbeAt,
        enabled: bool,
    ) -> None:
        self.plan, self.pkg_root, self.probe_at = plan, pkg_root, probe_at
        self.enabled = enabled and sys.platform == "linux"
        self.live: dict[ServerKey, ProbeServer] = {}
        self.with_dependencies = {
            probe["modules"][-1]: tuple(probe["modules"])
            for probe in plan["probes"]
            if probe["recipe"] == "import"
        }
        self.to_come = collections.Counter(self.key_of(probe) for probe in plan["probes"])

    def key_of(self, probe: ProbeEntry) -> ServerKey:
        """What a probe's process imports (its modules, each after the modules it depends on) and what it
        must not import."""
        modules: dict[str, None] = {}
        for module in probe["modules"]:
            modules.update(dict.fromkeys(self.with_dependencies.get(module, (module,))))
        return ServerKey(tuple(modules), tuple(probe.get("forbid", [])))

    def pids(self) -> set[int]:
        return {server.pid for server in self.live.values()}

    def prepare(self, probe: ProbeEntry) -> ProbeServer | None:
        """The server for this probe's modules, started if need be; None: run it in a child of its own
        (servers are off, or no other probe to come imports the same modules)."""
        key = self.key_of(probe)
        server = self.live.get(key)
        if server is not None and select.select([server.control], [], [], 0)[0]:
            self.end(server)  # it has ended itself: its last probe failed or changed its state
            server = None
        if server is None and self.enabled and self.to_come[key] > 1:
            server = self._start(key)
        return server

    def done(self, probe: ProbeEntry) -> None:
        """The probe is over (run or skipped): end its server if no probe to come needs it."""
        key = self.key_of(probe)
        self.to_come[key] -= 1
        if self.to_come[key] <= 0 and key in self.live:
            self.end(self.live[key])

    def launch(self, server: ProbeServer, position: int, write_fd: int, log_fd: int) -> None:
        """Hand the probe at `position` to `server`, without waiting: `took` says later whether it did
        (a server that has just ended drops the message, and with it the probe's pipe: its end comes)."""
        with contextlib.suppress(OSError):
            socket.send_fds(server.control, [POSITION.pack(position)], [write_fd, log_fd])

    def took(self, server: ProbeServer) -> bool:
        """Whether `server` took its probe; asked once its result pipe has ended. A server says so
        before it runs any of the probe's code, so by then the answer is there if it ever will be."""
        try:
            if not select.select([server.control], [], [], 0)[0]:
                return False
            return server.control.recv(1) == SERVER_ACCEPTED
        except OSError:
            return False

    def end(self, server: ProbeServer) -> None:
        """Stop using `server` and end it."""
        if self.live.get(server.key) is server:
            del self.live[server.key]
        server.control.close()
        kill_group(server.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(server.pid, 0)

    def ended(self, pids: set[int]) -> None:
        """Forget the servers that have ended and been reaped: their pids may belong to others soon."""
        for server in [server for server in self.live.values() if server.pid in pids]:
            del self.live[server.key]
            server.control.close()

    def forget(self) -> None:
        """Forget every server (the caller ends every process); new ones start on demand."""
        for server in self.live.values():
            server.control.close()
        self.live.clear()

    def close(self) -> None:
        for server in list(self.live.values()):
            self.end(server)

    def _start(self, key: ServerKey) -> ProbeServer | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            ours.close()
            child.server_main(theirs, key.modules, key.forbidden, self.plan, self.pkg_root, self.probe_at)
        theirs.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpgid(pid, pid)
        server = self.live[key] = ProbeServer(pid, ours, key)
        return server
