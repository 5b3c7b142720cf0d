#!/usr/bin/env python3
"""Smoke tests of asyncchat-bench and raw-echo: a very short run of every
mode against its server, checking correctness only (every frame verified,
nothing lost or duplicated, exit status 0), never speed.

Each case starts its own server (asyncchatd or tools/raw-echo) on an
ephemeral 127.0.0.1 port or a unix socket in a temporary directory, and
stops it by pid. Some cases use a protocol echo server written here in
Python (FakeEcho, on tests/lib/acproto.py), which misbehaves on purpose:
late or missing pongs, altered, replayed or re-encoded replies; the room
mode's, tests/lib's fake chat server, made to deliver copies that differ
or a room seq that skips. Prints TAP.
"""

import json
import os
import shutil
import socket
import threading
import uuid

import acproto
from fakechat import FakeChat, FakeChatServer
from harness import BUILDDIR, SERVER, Server, main, skip_all
from procs import Process, free_port, mkdtemp, run

BENCH = os.path.join(BUILDDIR, "tools", "asyncchat-bench", "asyncchat-bench")
RAWECHO = os.path.join(BUILDDIR, "tools", "raw-echo")

START_TIMEOUT = 10.0    # seconds for a server to log its port
RUN_TIMEOUT = 60.0      # seconds for one bench run, drain included
SHORT = ["-t", "0.3", "-d", "5"]


def asyncchatd(plugin, unix=False, history=None):
    """Start asyncchatd with one plugin (broadcast: include_sender = no)
    on an ephemeral 127.0.0.1 port, and with unix on a unix socket in its
    own temporary directory (srv.unix_path); with history (a database
    path), the history plugin after it."""
    opts = {"log_level": "info", "pid_file": "none",
            "heartbeat_timeout": 60,
            # A benchmark floods on purpose: no per-session rate limits.
            "max_message_rate": 0, "max_byte_rate": 0}
    plugins, sections = [plugin], {}
    if plugin == "broadcast":
        sections["broadcast"] = {"include_sender": False}
    if history is not None:
        plugins.append("history")
        sections["history"] = {"path": history}
    return Server(plugins=plugins, server=opts, sections=sections,
                  unix=unix)


def rawecho(mode):
    """Start tools/raw-echo in one of its modes on an ephemeral port; the
    Process, its port in .port."""
    d = mkdtemp("acbench-")
    p = Process([RAWECHO, "-m", mode, "-l", "tcp://127.0.0.1:0"],
                os.path.join(d, "raw-echo-" + mode + ".log"), cwd=d)
    m = p.wait_log(r"listening on tcp://127\.0\.0\.1:(\d+)", START_TIMEOUT)
    if m is None:
        raise RuntimeError("raw-echo -m %s did not start: %s"
                           % (mode, p.log()))
    p.port = int(m.group(1))
    return p


class FakeEcho:
    """A protocol echo server in threads of this process, on 127.0.0.1.

    It sends session_init, ignores session_ack, echoes every message as
    received and answers pings, except as told: pong_delay delays each pong
    by that many seconds (None: never answers one); alter flips a bit of
    each message's content and re-encodes it validly; replay sends the
    first message again after the second; reencode sends each message back
    in a new, valid frame with another header (not byte for byte).
    """

    def __init__(self, pong_delay=0.0, alter=False, replay=False,
                 reencode=False):
        self.pong_delay = pong_delay
        self.alter = alter
        self.replay = replay
        self.reencode = reencode
        self.stopping = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.05)
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        lock = threading.Lock()
        sid = str(uuid.uuid4())

        def send(data):
            with lock:
                try:
                    conn.sendall(data)
                except OSError:
                    pass

        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.05)
        send(acproto.encode("session_init", b"Session established", sid))
        dec = acproto.Decoder()
        first, n = None, 0
        while not self.stopping.is_set():
            try:
                data = conn.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            dec.feed(data)
            for f in dec:
                if isinstance(f, acproto.FrameError):
                    conn.close()
                    return
                if f.type == "heartbeat":
                    if self.pong_delay is None:
                        continue
                    pong = acproto.encode("heartbeat", b"pong", sid)
                    if self.pong_delay > 0:
                        t = threading.Timer(self.pong_delay, send, [pong])
                        t.daemon = True
                        t.start()
                    else:
                        send(pong)
                elif f.type == "message":
                    out = f.raw
                    if self.alter:
                        out = acproto.encode("message", bytes(
                            [f.content[0] ^ 1]) + f.content[1:], f.session_id)
                    elif self.reencode:
                        out = acproto.encode("message", f.content,
                                             f.session_id,
                                             extra={"echoed": True})
                    send(out)
                    n += 1
                    if first is None:
                        first = f.raw
                    if self.replay and n == 2:
                        send(first)
        conn.close()

    def stop(self):
        """Close the listener and every connection; join the threads."""
        self.stopping.set()
        self.lsock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class VaryingChat(FakeChat):
    """A chat server that makes each member's copy of a room message apart,
    with its own time: valid frames, but not one frame shared by all."""

    def to_room(self, sender, r, content, content_type, extra, time=None):
        r.seq += 1
        for i, m in enumerate(list(r.members.values())):
            members = {"room": r.name, "from": sender.nick, "seq": r.seq,
                       "time": "2026-12-06T11:00:00.%03dZ" % i}
            m.deliver([acproto.encode("message", content, sender.sid,
                                      content_type, self.key, members)])
        return r.seq


class SkippingChat(FakeChat):
    """A chat server whose room seq skips one after every message."""

    def to_room(self, sender, r, content, content_type, extra, time=None):
        seq = FakeChat.to_room(self, sender, r, content, content_type, extra,
                               time)
        r.seq += 1
        return seq


def bench(args):
    """Run asyncchat-bench with --json; return (status, result, output)."""
    status, out, err = run([BENCH] + args + ["--json"], timeout=RUN_TIMEOUT)
    result = None
    for line in out.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
    return status, result, out + err


def check_run(t, name, args, extra=None):
    """Run the bench and check: status 0, ok, verified, nothing lost."""
    status, r, out = bench(args)
    t.ok(status == 0 and r is not None and r["ok"], name + ": exit 0, ok",
         out)
    if r is None:
        return None
    t.ok(r["lost"] == 0 and r["duplicates"] == 0 and r["errors"] == 0,
         name + ": lost 0, duplicates 0, no error", out)
    t.ok(r["verified"] > 0, name + ": frames verified", out)
    if extra:
        extra(r, out)
    return r


def case_echo(t):
    with asyncchatd("echo", unix=True) as srv:
        def sent_all(r, out):
            t.ok(r["msgs"] > 0 and r["sent"] == r["received"],
                 "echo: everything sent came back", out)
        check_run(t, "echo tcp 64 B", ["echo", "-c", "2", "-w", "4", "-s",
                                       "64"] + SHORT +
                  ["127.0.0.1:%d" % srv.port], sent_all)
        check_run(t, "echo unix 4 KiB", ["echo", "-c", "2", "-w", "4", "-s",
                                         "4096"] + SHORT +
                  ["unix:" + srv.unix_path], sent_all)
        check_run(t, "echo 1x1 with pings", ["echo", "-c", "1", "-w", "1",
                                             "-H", "0.1"] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: t.ok(r["pings"] > 0 and
                                      r["pings"] == r["pongs"],
                                      "echo: every ping answered", out))
        status, r, out = bench(["echo", "-c", "1", "-k", "not-the-key"] +
                               SHORT + ["127.0.0.1:%d" % srv.port])
        t.ok(status != 0 and r is not None and not r["ok"] and
             "hmac" in r["error"], "echo with the wrong key fails on the HMAC",
             out)


def case_echo_checks(t):
    """The identity check of echoes, and the codec behind it."""
    with asyncchatd("echo") as srv:
        def verify_is(mode):
            return lambda r, out: t.ok(r.get("verify") == mode,
                                       "echo: verified by " + mode, out)
        check_run(t, "echo by identity", ["echo", "-c", "2", "-w", "4"] +
                  SHORT + ["127.0.0.1:%d" % srv.port], verify_is("identity"))
        check_run(t, "echo --full-verify", ["echo", "-c", "2", "-w", "4",
                                            "--full-verify"] + SHORT +
                  ["127.0.0.1:%d" % srv.port], verify_is("codec"))

    with FakeEcho(reencode=True) as fake:
        check_run(t, "echo re-encoded by the server (not byte for byte)",
                  ["echo", "-c", "2", "-w", "4"] + SHORT +
                  ["127.0.0.1:%d" % fake.port])

    with FakeEcho(alter=True) as fake:
        status, r, out = bench(["echo", "-c", "1", "-w", "2"] + SHORT +
                               ["127.0.0.1:%d" % fake.port])
        t.ok(status != 0 and r is not None and not r["ok"] and
             "content altered" in r["error"],
             "echo: an altered reply with a valid HMAC fails the run", out)

    with FakeEcho(replay=True) as fake:
        status, r, out = bench(["echo", "-c", "1", "-w", "4"] + SHORT +
                               ["127.0.0.1:%d" % fake.port])
        t.ok(status != 0 and r is not None and r["duplicates"] > 0 and
             "was due" in r["error"],
             "echo: a replayed reply is a duplicate and fails the run", out)


def case_pings(t):
    """Pings end with the window; the drain waits for their pongs."""
    # Each pong comes 0.4 s late, four heartbeat periods: when the window
    # ends some are always outstanding. The run must wait for them.
    with FakeEcho(pong_delay=0.4) as fake:
        check_run(t, "echo with late pongs", ["echo", "-c", "1", "-w", "1",
                                              "-H", "0.1", "-t", "0.3", "-d",
                                              "10",
                                              "127.0.0.1:%d" % fake.port],
                  lambda r, out: t.ok(r["pings"] > 0 and
                                      r["pings"] == r["pongs"] and
                                      r["pongs_lost"] == 0,
                                      "echo: late pongs waited for", out))

    with FakeEcho(pong_delay=None) as fake:
        status, r, out = bench(["echo", "-c", "1", "-w", "1", "-H", "0.1",
                                "-t", "0.3", "-d", "0.5",
                                "127.0.0.1:%d" % fake.port])
        t.ok(status != 0 and r is not None and not r["ok"] and
             r["pings"] > 0 and r["pongs_lost"] == r["pings"] and
             r["lost"] >= r["pings"] and "not answered" in r["error"],
             "echo: pings never answered are reported lost", out)


def case_cpu(t):
    """Every point says who was busy; -P adds the server's CPU time."""
    with asyncchatd("echo") as srv:
        def cpu_fields(r, out):
            t.ok(r["client_cpu_pct"] is not None and
                 r["client_us_per_msg"] is not None and
                 isinstance(r["client_bound"], bool) and
                 r["server_cpu_s"] is not None and r["server_cpu_s"] >= 0 and
                 r["server_us_per_msg"] is not None,
                 "echo -P: client and server CPU reported", out)
        check_run(t, "echo -P", ["echo", "-c", "2", "-w", "4", "-P",
                                 str(srv.pid)] + SHORT +
                  ["127.0.0.1:%d" % srv.port], cpu_fields)
        check_run(t, "echo without -P", ["echo", "-c", "2", "-w", "4"] +
                  SHORT + ["127.0.0.1:%d" % srv.port],
                  lambda r, out: t.ok(r["server_us_per_msg"] is None and
                                      r["client_cpu_pct"] is not None,
                                      "echo: no server CPU without -P", out))
        # Busy for 1 % of the window is surely reached: the flag and the
        # line that says so must show.
        check_run(t, "echo --bound 1", ["echo", "-c", "2", "-w", "4",
                                        "--bound", "1"] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: t.ok(r["client_bound"] is True and
                                      "CLIENT-BOUND" in out,
                                      "echo: a client-bound point is flagged",
                                      out))


def case_fanout(t):
    with asyncchatd("broadcast") as srv:
        for flags, name in (([], "fanout"), (["--full-verify"],
                                             "fanout --full-verify")):
            check_run(t, name + " 2 -> 5", ["fanout", "-p", "2", "-r", "5",
                                            "-s", "128", "-w", "8"] + flags +
                      SHORT + ["127.0.0.1:%d" % srv.port],
                      lambda r, out: t.ok(r["msgs"] > 0 and
                                          r["receivers"] == 5,
                                          "fanout: deliveries counted", out))


def case_resp(t):
    """Redis pub/sub, when redis-server is installed (it is optional)."""
    redis = shutil.which("redis-server")
    if redis is None:
        t.skip("Redis pub/sub", "redis-server is not installed")
        return
    d = mkdtemp("acbench-")
    port = free_port()
    with Process([redis, "--port", str(port), "--bind", "127.0.0.1",
                  "--save", "", "--appendonly", "no", "--dir", d],
                 os.path.join(d, "redis.log"), cwd=d) as proc:
        if proc.wait_log(r"Ready to accept", START_TIMEOUT) is None:
            raise RuntimeError("redis-server did not start: %s" % proc.log())
        for size in ("20", "128", "70000"):
            check_run(t, "resp 2 -> 5, %s B" % size,
                      ["resp", "-p", "2", "-r", "5", "-s", size, "-w", "8",
                       "-P", str(proc.pid)] + SHORT +
                      ["127.0.0.1:%d" % port],
                      lambda r, out: t.ok(r["msgs"] > 0 and
                                          r["server_us_per_msg"] is not None,
                                          "resp: deliveries counted, server "
                                          "CPU read", out))


def case_room(t):
    """Room mode against the chat plugin, and what it refuses."""
    with asyncchatd("chat") as srv:
        for flags, name in (([], "room"), (["--full-verify"],
                                           "room --full-verify")):
            check_run(t, name + " 2 -> 5",
                      ["room", "-p", "2", "-r", "5", "-s", "128", "-w", "8",
                       "-P", str(srv.pid)] + flags + SHORT +
                      ["127.0.0.1:%d" % srv.port],
                      lambda r, out: t.ok(
                          r["msgs"] > 0 and r["events"] > 0 and
                          r["room"] == "bench" and
                          r["verify"] == ("codec" if flags else "identity") and
                          isinstance(r["client_bound"], bool) and
                          r["server_us_per_msg"] is not None,
                          name + ": deliveries, events, client-bound flag "
                          "and the server's CPU counted", out))

    # With the history plugin, a second run's members are not sent the
    # first run's messages (they join with the largest since), and the
    # room seq goes on from the stored maximum.
    db = os.path.join(mkdtemp("acbench-"), "h.db")
    with asyncchatd("chat", history=db) as srv:
        for n in ("first", "second"):
            check_run(t, "room with history, %s run" % n,
                      ["room", "-p", "1", "-r", "3", "-s", "64", "-w", "4"] +
                      SHORT + ["127.0.0.1:%d" % srv.port])

    # Against broadcast the frames lack the chat members: the run fails.
    with asyncchatd("broadcast") as srv:
        status, r, out = bench(["room", "-p", "1", "-r", "2", "-s", "128",
                                "-w", "4"] + SHORT +
                               ["127.0.0.1:%d" % srv.port])
        t.ok(status != 0 and r is not None and not r["ok"] and
             "server's room" in r["error"],
             "room mode against broadcast fails: no server members", out)

    # tests/lib's fake chat server signs each message once for every
    # member, as the plugin does: the run passes.
    with FakeChatServer(FakeChat()) as fake:
        check_run(t, "room against the fake chat server",
                  ["room", "-p", "1", "-r", "3", "-s", "64", "-w", "4"] +
                  SHORT + ["127.0.0.1:%d" % fake.port])

    # A copy that is not byte for byte the first delivery fails the run,
    # whether compared by identity or decoded (--full-verify).
    for flags in ([], ["--full-verify"]):
        with FakeChatServer(VaryingChat()) as fake:
            status, r, out = bench(["room", "-p", "1", "-r", "3", "-s", "64",
                                    "-w", "4"] + flags + SHORT +
                                   ["127.0.0.1:%d" % fake.port])
            t.ok(status != 0 and r is not None and not r["ok"] and
                 "differs from another recipient's" in r["error"],
                 "room%s: copies signed apart for each member fail the run"
                 % (" " + flags[0] if flags else ""), out)

    # A room seq that skips one fails the run.
    with FakeChatServer(SkippingChat()) as fake:
        status, r, out = bench(["room", "-p", "1", "-r", "3", "-s", "64",
                                "-w", "4"] + SHORT +
                               ["127.0.0.1:%d" % fake.port])
        t.ok(status != 0 and r is not None and not r["ok"] and
             "room seq" in r["error"],
             "room: a room seq that skips one fails the run", out)


def case_idle(t):
    with asyncchatd("echo") as srv:
        check_run(t, "idle 5 sessions", ["idle", "-n", "5", "-P",
                                         str(srv.pid)] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: t.ok(r["pongs"] >= 5 and
                                      r["rss_held_kib"] > 0,
                                      "idle: pongs and server RSS read", out))


def case_raw(t):
    for mode in ("event", "bev"):
        with rawecho(mode) as srv:
            check_run(t, "raw against raw-echo -m " + mode,
                      ["raw", "-c", "2", "-w", "4", "-s", "1000"] + SHORT +
                      ["127.0.0.1:%d" % srv.port])
    with rawecho("frames") as srv:
        check_run(t, "echo against raw-echo -m frames",
                  ["echo", "-c", "2", "-w", "4", "-s", "64", "-H", "0.1"] +
                  SHORT + ["127.0.0.1:%d" % srv.port])


if __name__ == "__main__":
    for path in (BENCH, RAWECHO, SERVER):
        if not os.access(path, os.X_OK):
            skip_all("%s is not built" % path)
    main([case_echo, case_echo_checks, case_pings, case_cpu, case_fanout,
          case_resp, case_room, case_idle, case_raw])
