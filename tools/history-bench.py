#!/usr/bin/env python3
"""history-bench.py - what the history plugin costs, measured inside
asyncchatd (docs/HISTORY.md, docs/PERFORMANCE.md).

It starts asyncchatd from a build tree with the history plugin and the
test module tests/plugins/histdrive.so, which calls the history interface
as chat does and times each command on the server's own clock, from the
command to its last completion (so the Python client's speed is not in
the figures). For each sync mode:

  latency     one message at a time, --single times: the time from
              store() to its completion (what chat waits before it
              delivers a message when the chat is quiet): p50 and p99;
  throughput  --messages messages handed to store() at once (the loop
              hands them over as fast as it can): messages stored per
              second, from the first store() to the last completion;
  replay      a room of --replay messages, replayed whole --repeat
              times: the time from replay() to its completion (SQLite
              read on a worker, then every frame checked and queued to
              the session on the loop): median and range.

Message content is --size bytes (a frame adds about 190). The database
lives in a fresh directory under --dir (default /tmp): point it at the
file system you care about, since fsync (sync = full) costs what the disk
costs. Build first: make && make check TESTS= (which builds the test
modules). Standard library only; every process is stopped by pid.

usage: tools/history-bench.py [--builddir DIR] [--dir DIR] [--size B]
                              [--single N] [--messages N] [--replay N]
                              [--repeat K] [--sync normal,full] [--json]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(SRCDIR, "tests", "lib")]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.getcwd())
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--single", type=int, default=300)
    ap.add_argument("--messages", type=int, default=50000)
    ap.add_argument("--replay", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--sync", default="normal,full")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def ms_of(reply, prefix):
    if not reply.startswith(prefix):
        raise SystemExit("unexpected reply: %r" % reply)
    m = re.search(r" ms=([0-9.]+)$", reply)
    return float(m.group(1))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 *
                                                 (len(values) - 1))))]


def run_mode(harness, acproto, args, sync):
    d = tempfile.mkdtemp(prefix="achbench-", dir=args.dir)
    srv = harness.Server(plugins=[harness.test_plugin("histdrive"),
                                  "history"],
                         sections={"history": {
                             "path": os.path.join(d, "h.db"),
                             "sync": sync,
                             "max_replay": max(args.replay, 1000),
                             "max_messages": 0}})
    try:
        c = srv.client("tcp")

        def ask(text, prefix, timeout=300):
            c.send_message(text.encode(), acproto.TEXT_UTF8)
            while True:
                f = c.recv_type("message", timeout)
                if "room" not in f.header:
                    return ms_of(f.text(), prefix)

        single = [ask("store one 1 quiet size=%d" % args.size, "stored")
                  for _ in range(args.single)]
        total = ask("store bulk %d quiet size=%d" % (args.messages,
                                                     args.size), "stored")
        ask("store replay %d quiet size=%d" % (args.replay, args.size),
            "stored")
        replays = []
        for _ in range(args.repeat):
            c.send_message(("replay replay last %d" % args.replay).encode(),
                           acproto.TEXT_UTF8)
            got = 0
            while True:
                f = c.recv_type("message", 60)
                if "room" in f.header:
                    got += 1
                    continue
                replays.append(ms_of(f.text(), "replayed status=ok n=%d "
                                     % args.replay))
                break
            if got != args.replay:
                raise SystemExit("replay sent %d of %d" % (got, args.replay))
        c.close()
        srv.stop()
        return {
            "sync": sync,
            "size": args.size,
            "store_latency_ms_p50": percentile(single, 50),
            "store_latency_ms_p99": percentile(single, 99),
            "stored_per_s": args.messages / (total / 1000.0),
            "messages": args.messages,
            "replay_messages": args.replay,
            "replay_ms_median": statistics.median(replays),
            "replay_ms_min": min(replays),
            "replay_ms_max": max(replays),
        }
    finally:
        if srv.active:
            srv.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    args = parse_args()
    os.environ.setdefault("AC_TOP_SRCDIR", SRCDIR)
    os.environ.setdefault("AC_TOP_BUILDDIR", os.path.abspath(args.builddir))
    import acproto
    import harness
    if not os.path.exists(os.path.join(harness.TESTPLUGINDIR,
                                       "histdrive.so")):
        raise SystemExit("no histdrive.so under %s: run `make check TESTS=` "
                         "in the build tree first" % harness.TESTPLUGINDIR)
    results = []
    for sync in args.sync.split(","):
        r = run_mode(harness, acproto, args, sync)
        results.append(r)
        print("sync=%-6s store latency p50 %.3f ms p99 %.3f ms; %.0f "
              "messages stored/s (%d of %d B); replay of %d: median %.2f ms "
              "(%.2f-%.2f)" % (sync, r["store_latency_ms_p50"],
                               r["store_latency_ms_p99"], r["stored_per_s"],
                               r["messages"], r["size"], r["replay_messages"],
                               r["replay_ms_median"], r["replay_ms_min"],
                               r["replay_ms_max"]))
        if args.json:
            print(json.dumps(r))
    harness._cleanup()


if __name__ == "__main__":
    main()
