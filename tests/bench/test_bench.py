#!/usr/bin/env python3
"""Smoke tests of asyncchat-bench and raw-echo: a very short run of every
mode against its server, checking correctness only (every frame verified,
nothing lost or duplicated, exit status 0), never speed.

Each case starts its own server (asyncchatd or tools/raw-echo) on an
ephemeral 127.0.0.1 port or a unix socket in a temporary directory, and
stops it by pid. Some cases use a protocol echo server written here in
Python (FakeEcho, on tests/e2e/acproto.py), which misbehaves on purpose:
late or missing pongs, altered, replayed or re-encoded replies. Prints TAP.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

SRCDIR = os.environ.get("AC_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.environ.get("AC_TOP_BUILDDIR") or SRCDIR
PLUGINDIR = os.environ.get("AC_PLUGIN_BUILDDIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
BENCH = os.path.join(BUILDDIR, "tools", "asyncchat-bench", "asyncchat-bench")
RAWECHO = os.path.join(BUILDDIR, "tools", "raw-echo")
SERVER = os.path.join(BUILDDIR, "src", "server", "asyncchatd")

sys.path.insert(0, os.path.join(SRCDIR, "tests", "e2e"))
import acproto  # noqa: E402

START_TIMEOUT = 10.0    # seconds for a server to log its port
RUN_TIMEOUT = 60.0      # seconds for one bench run, drain included
SHORT = ["-t", "0.3", "-d", "5"]

_count = 0
_failed = 0


def ok(cond, name, diag=None):
    """Print one TAP line; diag is printed as comments on failure."""
    global _count, _failed
    _count += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", _count, name))
    if not cond:
        _failed += 1
        for line in str(diag or "").splitlines():
            print("# " + line)
    sys.stdout.flush()
    return cond


class Server:
    """A server process started from argv, whose log names its port."""

    def __init__(self, argv, tmpdir, name):
        self.log_path = os.path.join(tmpdir, name + ".log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log_file,
                                     stderr=self.log_file, cwd=tmpdir)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.monotonic() + START_TIMEOUT
        while self.port is None:
            m = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (name, self.log()))
            elif time.monotonic() > deadline:
                raise RuntimeError("%s did not start: %s" % (name, self.log()))
            else:
                time.sleep(0.02)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """SIGTERM by pid, then SIGKILL if it does not exit in 5 s."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log_file.close()


def asyncchatd(tmpdir, plugin, unix_path=None):
    """Start asyncchatd with one plugin (broadcast: include_sender = no)."""
    conf = os.path.join(tmpdir, plugin + ".conf")
    lines = ["[server]", "listen = tcp://127.0.0.1:0"]
    if unix_path:
        lines.append("listen = unix://" + unix_path)
    lines += ["hmac_key = default-key", "log = stderr", "log_level = info",
              "plugin_dir = " + PLUGINDIR, "pid_file = none",
              "heartbeat_timeout = 60",
              # A benchmark floods on purpose: no per-session rate limits.
              "max_message_rate = 0", "max_byte_rate = 0",
              "", "[plugins]", "load = " + plugin]
    if plugin == "broadcast":
        lines += ["", "[plugin.broadcast]", "include_sender = no"]
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return Server([SERVER, "-f", "-c", conf], tmpdir, "asyncchatd-" + plugin)


def rawecho(tmpdir, mode):
    """Start tools/raw-echo in one of its modes on an ephemeral port."""
    return Server([RAWECHO, "-m", mode, "-l", "tcp://127.0.0.1:0"], tmpdir,
                  "raw-echo-" + mode)


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
        self.stopping.set()
        self.lsock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)


def bench(args):
    """Run asyncchat-bench with --json; return (status, result, output)."""
    p = subprocess.run([BENCH] + args + ["--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
    out = p.stdout.decode("utf-8", "replace")
    result = None
    for line in out.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
    return p.returncode, result, out


def check_run(name, args, extra=None):
    """Run the bench and check: status 0, ok, verified, nothing lost."""
    status, r, out = bench(args)
    ok(status == 0 and r is not None and r["ok"], name + ": exit 0, ok", out)
    if r is None:
        return None
    ok(r["lost"] == 0 and r["duplicates"] == 0 and r["errors"] == 0,
       name + ": lost 0, duplicates 0, no error", out)
    ok(r["verified"] > 0, name + ": frames verified", out)
    if extra:
        extra(r, out)
    return r


def case_echo(tmpdir):
    sock = os.path.join(tmpdir, "e.sock")
    srv = asyncchatd(tmpdir, "echo", unix_path=sock)
    try:
        def sent_all(r, out):
            ok(r["msgs"] > 0 and r["sent"] == r["received"],
               "echo: everything sent came back", out)
        check_run("echo tcp 64 B", ["echo", "-c", "2", "-w", "4", "-s", "64"]
                  + SHORT + ["127.0.0.1:%d" % srv.port], sent_all)
        check_run("echo unix 4 KiB", ["echo", "-c", "2", "-w", "4", "-s",
                                      "4096"] + SHORT + ["unix:" + sock],
                  sent_all)
        check_run("echo 1x1 with pings", ["echo", "-c", "1", "-w", "1",
                                          "-H", "0.1"] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: ok(r["pings"] > 0 and
                                    r["pings"] == r["pongs"],
                                    "echo: every ping answered", out))
        status, r, out = bench(["echo", "-c", "1", "-k", "not-the-key"] +
                               SHORT + ["127.0.0.1:%d" % srv.port])
        ok(status != 0 and r is not None and not r["ok"] and
           "hmac" in r["error"], "echo with the wrong key fails on the HMAC",
           out)
    finally:
        srv.stop()


def case_echo_checks(tmpdir):
    """The identity check of echoes, and the codec behind it."""
    srv = asyncchatd(tmpdir, "echo")
    try:
        def verify_is(mode):
            return lambda r, out: ok(r.get("verify") == mode,
                                     "echo: verified by " + mode, out)
        check_run("echo by identity", ["echo", "-c", "2", "-w", "4"] + SHORT +
                  ["127.0.0.1:%d" % srv.port], verify_is("identity"))
        check_run("echo --full-verify", ["echo", "-c", "2", "-w", "4",
                                         "--full-verify"] + SHORT +
                  ["127.0.0.1:%d" % srv.port], verify_is("codec"))
    finally:
        srv.stop()

    fake = FakeEcho(reencode=True)
    try:
        check_run("echo re-encoded by the server (not byte for byte)",
                  ["echo", "-c", "2", "-w", "4"] + SHORT +
                  ["127.0.0.1:%d" % fake.port])
    finally:
        fake.stop()

    fake = FakeEcho(alter=True)
    try:
        status, r, out = bench(["echo", "-c", "1", "-w", "2"] + SHORT +
                               ["127.0.0.1:%d" % fake.port])
        ok(status != 0 and r is not None and not r["ok"] and
           "content altered" in r["error"],
           "echo: an altered reply with a valid HMAC fails the run", out)
    finally:
        fake.stop()

    fake = FakeEcho(replay=True)
    try:
        status, r, out = bench(["echo", "-c", "1", "-w", "4"] + SHORT +
                               ["127.0.0.1:%d" % fake.port])
        ok(status != 0 and r is not None and r["duplicates"] > 0 and
           "was due" in r["error"],
           "echo: a replayed reply is a duplicate and fails the run", out)
    finally:
        fake.stop()


def case_pings(tmpdir):
    """Pings end with the window; the drain waits for their pongs."""
    # Each pong comes 0.4 s late, four heartbeat periods: when the window
    # ends some are always outstanding. The run must wait for them.
    fake = FakeEcho(pong_delay=0.4)
    try:
        check_run("echo with late pongs", ["echo", "-c", "1", "-w", "1",
                                           "-H", "0.1", "-t", "0.3", "-d",
                                           "10", "127.0.0.1:%d" % fake.port],
                  lambda r, out: ok(r["pings"] > 0 and
                                    r["pings"] == r["pongs"] and
                                    r["pongs_lost"] == 0,
                                    "echo: late pongs waited for", out))
    finally:
        fake.stop()

    fake = FakeEcho(pong_delay=None)
    try:
        status, r, out = bench(["echo", "-c", "1", "-w", "1", "-H", "0.1",
                                "-t", "0.3", "-d", "0.5",
                                "127.0.0.1:%d" % fake.port])
        ok(status != 0 and r is not None and not r["ok"] and
           r["pings"] > 0 and r["pongs_lost"] == r["pings"] and
           r["lost"] >= r["pings"] and "not answered" in r["error"],
           "echo: pings never answered are reported lost", out)
    finally:
        fake.stop()


def case_cpu(tmpdir):
    """Every point says who was busy; -P adds the server's CPU time."""
    srv = asyncchatd(tmpdir, "echo")
    try:
        def cpu_fields(r, out):
            ok(r["client_cpu_pct"] is not None and
               r["client_us_per_msg"] is not None and
               isinstance(r["client_bound"], bool) and
               r["server_cpu_s"] is not None and r["server_cpu_s"] >= 0 and
               r["server_us_per_msg"] is not None,
               "echo -P: client and server CPU reported", out)
        check_run("echo -P", ["echo", "-c", "2", "-w", "4", "-P",
                              str(srv.pid)] + SHORT +
                  ["127.0.0.1:%d" % srv.port], cpu_fields)
        check_run("echo without -P", ["echo", "-c", "2", "-w", "4"] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: ok(r["server_us_per_msg"] is None and
                                    r["client_cpu_pct"] is not None,
                                    "echo: no server CPU without -P", out))
        # Busy for 1 % of the window is surely reached: the flag and the
        # line that says so must show.
        check_run("echo --bound 1", ["echo", "-c", "2", "-w", "4", "--bound",
                                     "1"] + SHORT +
                  ["127.0.0.1:%d" % srv.port],
                  lambda r, out: ok(r["client_bound"] is True and
                                    "CLIENT-BOUND" in out,
                                    "echo: a client-bound point is flagged",
                                    out))
    finally:
        srv.stop()


def case_fanout(tmpdir):
    srv = asyncchatd(tmpdir, "broadcast")
    try:
        for flags, name in (([], "fanout"), (["--full-verify"],
                                             "fanout --full-verify")):
            check_run(name + " 2 -> 5", ["fanout", "-p", "2", "-r", "5",
                                         "-s", "128", "-w", "8"] + flags +
                      SHORT + ["127.0.0.1:%d" % srv.port],
                      lambda r, out: ok(r["msgs"] > 0 and r["receivers"] == 5,
                                        "fanout: deliveries counted", out))
    finally:
        srv.stop()


def case_resp(tmpdir):
    """Redis pub/sub, when redis-server is installed (it is optional)."""
    redis = shutil.which("redis-server")
    if redis is None:
        print("ok %d # SKIP redis-server is not installed" % (_count + 1))
        globals()["_count"] += 1
        return
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(os.path.join(tmpdir, "redis.log"), "wb")
    proc = subprocess.Popen([redis, "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tmpdir], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(os.path.join(tmpdir, "redis.log"), "rb") as f:
                if b"Ready to accept" in f.read():
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        for size in ("20", "128", "70000"):
            check_run("resp 2 -> 5, %s B" % size,
                      ["resp", "-p", "2", "-r", "5", "-s", size, "-w", "8",
                       "-P", str(proc.pid)] + SHORT +
                      ["127.0.0.1:%d" % port],
                      lambda r, out: ok(r["msgs"] > 0 and
                                        r["server_us_per_msg"] is not None,
                                        "resp: deliveries counted, server "
                                        "CPU read", out))
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def case_idle(tmpdir):
    srv = asyncchatd(tmpdir, "echo")
    try:
        check_run("idle 5 sessions", ["idle", "-n", "5", "-P", str(srv.pid)]
                  + SHORT + ["127.0.0.1:%d" % srv.port],
                  lambda r, out: ok(r["pongs"] >= 5 and r["rss_held_kib"] > 0,
                                    "idle: pongs and server RSS read", out))
    finally:
        srv.stop()


def case_raw(tmpdir):
    for mode in ("event", "bev"):
        srv = rawecho(tmpdir, mode)
        try:
            check_run("raw against raw-echo -m " + mode,
                      ["raw", "-c", "2", "-w", "4", "-s", "1000"] + SHORT +
                      ["127.0.0.1:%d" % srv.port])
        finally:
            srv.stop()
    srv = rawecho(tmpdir, "frames")
    try:
        check_run("echo against raw-echo -m frames",
                  ["echo", "-c", "2", "-w", "4", "-s", "64", "-H", "0.1"] +
                  SHORT + ["127.0.0.1:%d" % srv.port])
    finally:
        srv.stop()


def main():
    for path in (BENCH, RAWECHO, SERVER):
        if not os.access(path, os.X_OK):
            print("1..0 # SKIP %s is not built" % path)
            return 0
    for case in (case_echo, case_echo_checks, case_pings, case_cpu,
                 case_fanout, case_resp, case_idle, case_raw):
        tmpdir = tempfile.mkdtemp(prefix="acbench-", dir="/tmp")
        try:
            case(tmpdir)
        except Exception:
            ok(False, case.__name__ + " ran without an exception",
               traceback.format_exc())
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    print("1..%d" % _count)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
