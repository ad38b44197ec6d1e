# SPDX-License-Identifier: MIT
"""What the test servers in this folder share: listening on several
loopback addresses at one port, and stopping when the test that started
them is gone.  Imported by the servers run as scripts from this folder."""

import asyncio
import os
import socket
import sys


def bind_tcp_all(addrs, port):
    """Listening TCP sockets on every address, all on one port (port 0:
    the first address picks one, the others follow; retried if taken)."""
    for _ in range(200):
        socks = []
        try:
            p = port
            for addr in addrs:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                t = socket.socket(fam, socket.SOCK_STREAM)
                socks.append(t)
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                t.bind((addr, p))
                p = t.getsockname()[1]
            for t in socks:
                t.listen(64)
                t.setblocking(False)
            return p, socks
        except OSError:
            for t in socks:
                t.close()
            if port != 0:
                raise
    raise OSError("no port free on every address")


async def watch_parent(name, ppid, stop):
    """Sets stop when the parent process is gone: a killed test runner
    must not leave its servers behind."""
    while os.getppid() == ppid:
        await asyncio.sleep(0.5)
    print(f"{name}: parent gone, stopping", file=sys.stderr)
    stop.set()
