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
import subprocess

import procs
from harness import BUILDDIR, SERVER, Server, main, mkdtemp, skip_all

BENCH = os.path.join(BUILDDIR, "tools", "asyncchat-bench", "asyncchat-bench")
RAWECHO = os.path.join(BUILDDIR, "tools", "raw-echo")

START_TIMEOUT = 10.0    # seconds for a server to log its port
RUN_TIMEOUT = 60.0      # seconds for one bench run, drain included
SHORT = ["-t", "0.3", "-d", "5"]


def asyncchatd(plugin, unix=False):
    """Start asyncchatd with one plugin (broadcast: include_sender = no)."""
    opts = {"log_level": "info", "pid_file": "none", "heartbeat_timeout": 60,
            # A benchmark floods on purpose: no per-session rate limits.
            "max_message_rate": 0, "max_byte_rate": 0}
    sections = {}
    if plugin == "broadcast":
        sections["broadcast"] = {"include_sender": "no"}
    return Server(plugins=[plugin], server=opts, sections=sections,
                  unix=unix)


class RawEcho(procs.Process):
    """tools/raw-echo in one of its modes on an ephemeral port."""

    def __init__(self, mode):
        d = mkdtemp("acbench-")
        procs.Process.__init__(self, [RAWECHO, "-m", mode, "-l",
                                      "tcp://127.0.0.1:0"],
                               os.path.join(d, "raw-echo-%s.log" % mode),
                               cwd=d)
        m = self.wait_log(r"listening on tcp://127\.0\.0\.1:(\d+)",
                          START_TIMEOUT)
        if not m:
            raise RuntimeError("raw-echo -m %s did not start: %s"
                               % (mode, self.log()))
        self.port = int(m.group(1))


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
             "hmac" in r["error"], "echo with the wrong key fails on the "
             "HMAC", out)


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
        with RawEcho(mode) as srv:
            check_run(t, "raw against raw-echo -m " + mode,
                      ["raw", "-c", "2", "-w", "4", "-s", "1000"] + SHORT +
                      ["127.0.0.1:%d" % srv.port])
    with RawEcho("frames") as srv:
        check_run(t, "echo against raw-echo -m frames",
                  ["echo", "-c", "2", "-w", "4", "-s", "64", "-H", "0.1"] +
                  SHORT + ["127.0.0.1:%d" % srv.port])


if __name__ == "__main__":
    for path in (BENCH, RAWECHO, SERVER):
        if not os.access(path, os.X_OK):
            skip_all("%s is not built" % path)
    main([case_echo, case_fanout, case_idle, case_raw])
