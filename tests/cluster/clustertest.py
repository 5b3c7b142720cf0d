"""What the cluster plugin's tests need beyond tests/lib: a JetStream
cluster of nats-servers (each with its own store directory under a temp
dir, joined by routes, on free loopback ports), and asyncchatd nodes with
`load = chat, cluster` on it.

Everything listens on 127.0.0.1; every process is stopped by pid when its
case ends (harness.main) and at exit, whatever happens. Waits are for
events (a log line, a frame, a metric), each bounded.
"""

import os
import re

import acproto
import harness
import metrics
import nats
from chat import ChatClient
from nats import NATS_SERVER  # noqa: F401
from procs import free_port, mkdtemp, wait_until  # noqa: F401

KEY = "cluster-test-key"


def main(cases):
    """harness.main, or a skipped plan without nats-server or the plugin."""
    nats.main(cases, "cluster")


class JsServer(nats.NatsServer):
    """One nats-server with JetStream, its store in its own directory,
    routed to the others of its cluster. Ports are fixed at creation, so
    that a restart comes back where the nodes look for it."""

    def __init__(self, name, port, cluster_port, routes, base):
        self.dir = os.path.join(base, name)
        os.makedirs(os.path.join(self.dir, "store"), exist_ok=True)
        nats.NatsServer.__init__(self, logpath=os.path.join(self.dir,
                                                            "nats.log"),
                                 cwd=self.dir, name="nats-server " + name)
        self.srv_name = name
        self.port = port
        self.cluster_port = cluster_port
        self.routes = routes
        self.starts = 0

    def start(self, timeout=15.0):
        args = ["-n", self.srv_name, "-js",
                "-sd", os.path.join(self.dir, "store")]
        if self.routes:
            args += ["--cluster_name", "acjs",
                     "--cluster", "nats://127.0.0.1:%d" % self.cluster_port,
                     "--routes", ",".join("nats://127.0.0.1:%d" % r
                                          for r in self.routes)]
        # keep each run's log: a restart appends after the last one
        with open(self.logpath, "a") as f:
            f.write("--- start %d ---\n" % self.starts)
        self.starts += 1
        return self.launch_wait(args, timeout)

    def stop(self, timeout=10.0):
        return nats.NatsServer.stop(self, timeout)


class JsCluster:
    """n nats-servers with JetStream, routed into one cluster."""

    def __init__(self, n=3):
        self.n = n
        self.base = mkdtemp("acjs-")
        self._make(0)

    def _make(self, attempt):
        """Servers on fresh free ports, stores under base/try-N."""
        ports = [free_port() for _ in range(self.n)]
        cports = [free_port() for _ in range(self.n)]
        base = os.path.join(self.base, "try-%d" % attempt)
        self.servers = [JsServer("n%d" % (i + 1), ports[i], cports[i],
                                 [c for j, c in enumerate(cports) if j != i],
                                 base) for i in range(self.n)]

    def start(self, timeout=30.0):
        # A free port can be taken by another program (tests run in
        # parallel on this machine) between its choice and nats-server's
        # bind: then the whole cluster starts again on new ports.
        for attempt in range(4):
            try:
                for s in self.servers:
                    s.start()
                break
            except RuntimeError as e:
                if "address already in use" not in str(e) or attempt == 3:
                    raise
                self.stop()
                self._make(attempt + 1)
        if not self.wait_leader(timeout):
            raise RuntimeError("no JetStream metadata leader:\n" +
                               "\n".join(s.log()[-1500:]
                                         for s in self.servers))
        return self

    def wait_leader(self, timeout=30.0):
        """Wait until a JetStream metadata leader is elected."""
        pat = re.compile(r"JetStream cluster new metadata leader|"
                         r"Self is new JetStream cluster metadata leader")
        return wait_until(lambda: any(pat.search(s.log())
                                      for s in self.servers
                                      if s.active), timeout, 0.05)

    def stream_leader(self, stream):
        """The running server that last said it leads stream (its log's
        "new stream leader" line, the latest by time), or None."""
        pat = re.compile(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) \[INF\] "
                         r"JetStream cluster new stream leader for "
                         r"'\$G > %s'" % re.escape(stream))
        best = None
        for s in self.servers:
            if not s.active:
                continue
            for m in pat.finditer(s.log()):
                if best is None or m.group(1) > best[0]:
                    best = (m.group(1), s)
        return best[1] if best else None

    @property
    def urls(self):
        return [s.url for s in self.servers]

    def stop(self):
        for s in self.servers:
            if s.active:
                s.stop()


class ChatNode(harness.Server):
    """One asyncchatd with `load = chat, cluster`, on TCP, with metrics."""

    def __init__(self, name, servers, replicas=3, cluster_opts=None,
                 chat_opts=None, start=True, plugins=("chat", "cluster")):
        opts = {"servers": ", ".join(servers), "node_name": name,
                "replicas": str(replicas), "heartbeat": "1",
                "node_timeout": "3", "reconnect_wait": "200"}
        opts.update(cluster_opts or {})
        harness.Server.__init__(
            self, plugins=list(plugins), unix=False,
            server={"log_level": "info", "metrics_listen": "127.0.0.1:0"},
            sections={"chat": dict(chat_opts or {}), "cluster": opts},
            key=KEY, start=False)
        self.name = name
        if start:
            self.start()

    def start(self, wait=True, args=("-f",)):
        """Start it; .mark is where this run's log begins (the log of a
        restart follows the last run's, and so does its port)."""
        self.mark = len(self.log()) if os.path.exists(self.logpath) else 0
        self.port = None
        harness.Server.start(self, wait, args)
        if wait:
            m = self.wait_log(r"listening on tcp://127\.0\.0\.1:(\d+)", 5)
            self.port = int(m.group(1))
        return self

    def wait_log(self, pattern, timeout=10.0, start=None, count=1):
        """wait_log, from this run's start by default."""
        if start is None:
            start = self.mark
        return harness.Server.wait_log(self, pattern, timeout, start, count)

    def wait_ready_cluster(self, timeout=30.0):
        """Wait until the node's link to JetStream is set up."""
        return self.wait_log(r"cluster link ready", timeout)

    def stop(self, timeout=10.0):
        return harness.Server.stop(self, timeout)[0]

    def chat(self, nick=None, rooms=None, extra=None, sync=True):
        """A chat client on this node, handshake done (welcome in
        .welcome)."""
        c = ChatClient.connect(self.addr("tcp"), key=self.key,
                               name=self.name)
        if sync:
            c.chat_handshake(nick=nick, rooms=rooms, extra=extra)
        else:
            c.chat_ack(nick=nick, rooms=rooms, extra=extra)
        return c

    def metric(self, name, plugin="cluster"):
        """The value of NAME{plugin="..."} on this run's /metrics."""
        url = metrics.metrics_url(self, self.mark)
        return metrics.scrape(url).get(name, plugin=plugin)


def wait_said(c, text, timeout=20.0):
    """The message with this content, at client c."""
    return c.wait_for(lambda f: "event" not in f.header and
                      f.content == text.encode(), "message %r" % text,
                      timeout)


def collect(c, pred, n, what, timeout=30.0):
    """The first n frames pred accepts at client c, in order."""
    got = []
    while len(got) < n:
        got.append(c.wait_for(pred, "%s (%d of %d)" % (what, len(got) + 1,
                                                        n), timeout))
    return got


def is_room_msg(room):
    """A predicate: a message (not an event) of this room."""
    return lambda f: "event" not in f.header and \
        f.header.get("room", "").lower() == room.lower()


def is_ev(name, **members):
    """A predicate: an event of this name with these members."""
    return lambda f: f.header.get("event") == name and all(
        f.header.get(k) == v for k, v in members.items())


def pong(c, timeout=10.0):
    """Everything c got up to now (a ping's pong ends it)."""
    return c.sync(timeout)


def disconnect(c):
    try:
        c.close()
    except (OSError, acproto.Closed):
        pass


def nats_publish(port, subject, payloads, timeout=5.0, reply=None,
                 headers=None):
    """Publish each payload on subject (with a reply subject and headers,
    if given) with a bare NATS client, as someone who is not a server
    would, then PING and wait for the PONG, so that NATS has taken
    them."""
    nats.publish(port, subject, payloads, timeout, reply, headers)
