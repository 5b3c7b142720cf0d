#!/usr/bin/env python3
"""Smoke tests of asyncchat-bench and raw-echo: a very short run of every
mode against its server, checking correctness only (every frame verified,
nothing lost or duplicated, exit status 0), never speed.

Each case starts its own server (asyncchatd or tools/raw-echo) on an
ephemeral 127.0.0.1 port or a unix socket in a temporary directory, and
stops it by pid. Prints TAP.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SRCDIR = os.environ.get("AC_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.environ.get("AC_TOP_BUILDDIR") or SRCDIR
PLUGINDIR = os.environ.get("AC_PLUGIN_BUILDDIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
BENCH = os.path.join(BUILDDIR, "tools", "asyncchat-bench", "asyncchat-bench")
RAWECHO = os.path.join(BUILDDIR, "tools", "raw-echo")
SERVER = os.path.join(BUILDDIR, "src", "server", "asyncchatd")

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


def case_room(tmpdir):
    srv = asyncchatd(tmpdir, "chat")
    try:
        for flags, name in (([], "room"), (["--full-verify"],
                                           "room --full-verify")):
            check_run(name + " 2 -> 5", ["room", "-p", "2", "-r", "5",
                                         "-s", "128", "-w", "8", "-P",
                                         str(srv.pid)] + flags + SHORT +
                      ["127.0.0.1:%d" % srv.port],
                      lambda r, out: ok(r["msgs"] > 0 and r["events"] > 0 and
                                        r["server_cpu_us_per_delivery"] > 0,
                                        "room: deliveries, events and the "
                                        "server's CPU counted", out))
    finally:
        srv.stop()
    # Against broadcast the frames lack the chat members: the run fails.
    srv = asyncchatd(tmpdir, "broadcast")
    try:
        status, r, out = bench(["room", "-p", "1", "-r", "2", "-s", "128",
                                "-w", "4"] + SHORT +
                               ["127.0.0.1:%d" % srv.port])
        ok(status != 0 and r is not None and not r["ok"] and
           "server's room" in r["error"],
           "room mode against broadcast fails: no server members", out)
    finally:
        srv.stop()


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
    for case in (case_echo, case_fanout, case_room, case_idle, case_raw):
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
