"""What the nats plugin tests need beyond tests/lib: nats-server
processes, asyncchatd nodes joined through them, and a raw NATS
publisher.

Everything listens on 127.0.0.1; every process is stopped by pid when
its case ends (harness.main) and at exit, whatever happens.
"""

import os

import acproto
import harness
import nats
from nats import NATS_SERVER  # noqa: F401
from procs import free_port, mkdtemp, wait_until  # noqa: F401

KEY = b"nats-test-key"
TEXT = acproto.TEXT_UTF8


def main(cases):
    """harness.main, or a skipped plan without nats-server or the plugin."""
    nats.main(cases, "nats")


class Gnatsd(nats.NatsServer):
    """One nats-server on 127.0.0.1 (optionally clustered by routes)."""

    def __init__(self, port=None, cluster_port=None, routes=(), extra=()):
        self.dir = mkdtemp("acnats-")
        nats.NatsServer.__init__(self, logpath=os.path.join(self.dir,
                                                            "nats.log"),
                                 cwd=self.dir, name="nats-server")
        self.extra = list(extra)
        self.port = port or free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)

    def start(self, timeout=10.0):
        args = []
        if self.cluster_port:
            args += ["--cluster_name", "acnats",
                     "--cluster", "nats://127.0.0.1:%d" % self.cluster_port]
            if self.routes:
                args += ["--routes", ",".join(
                    "nats://127.0.0.1:%d" % r for r in self.routes)]
        return self.launch_wait(args + self.extra, timeout)

    def routed(self, n, timeout=10.0):
        """Wait until this server logs n route connections."""
        return self.wait_log(r"Route connection created", timeout, count=n)


class Node(harness.Server):
    """One asyncchatd with `load = broadcast, nats`, listening on TCP."""

    def __init__(self, name, servers, prefix="asyncchat", nats_opts=None,
                 key=KEY, start=True, metrics=False, server_opts=None):
        opts = {"servers": ", ".join(servers), "subject_prefix": prefix,
                "node_name": name, "reconnect_wait": "200"}
        opts.update(nats_opts or {})
        server = {"log_level": "info"}
        if metrics:
            server["metrics_listen"] = "127.0.0.1:0"
        server.update(server_opts or {})
        harness.Server.__init__(
            self, plugins=["broadcast", "nats"], unix=False,
            server=server, sections={"nats": opts},
            key=key.decode(), start=False)
        self.name = name
        if start:
            self.start()

    @property
    def conf(self):
        return self.confpath

    def wait_log(self, pattern, timeout=5.0, start=0, count=1):
        return harness.Server.wait_log(self, pattern, timeout, start, count)

    def stop(self, timeout=5.0):
        """Stop it by pid (SIGTERM); its exit status."""
        return harness.Server.stop(self, timeout)[0]

    def client(self, name=None, **kw):
        """A client on this node, handshake done; sends text by default."""
        kw.setdefault("content_type", TEXT)
        return harness.Server.client(self, "tcp", name=name or self.name,
                                     **kw)


def nats_publish(port, subject, payloads, timeout=5.0):
    """Publish each payload with a bare NATS protocol client (no headers),
    then PING and wait for the PONG so the server has routed them."""
    nats.publish(port, subject, payloads, timeout)


def encode(type_, content, session_id=None, content_type=TEXT, key=KEY,
           extra=None):
    """A frame as a node's client would send it (for injecting into NATS;
    extra: more header members)."""
    return acproto.encode(type_, content, session_id, content_type, key,
                          extra)
