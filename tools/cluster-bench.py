#!/usr/bin/env python3
"""cluster-bench.py - chat across three servers (the cluster plugin, on a
three-server JetStream cluster) next to chat on one server (chat and the
SQLite history plugin): a room's fan-out, and replays (docs/SCALING.md).

Phases, for each set-up:
  fan-out   SENDERS clients (spread over the nodes, or all on the first
            with --one-node) send MESSAGES messages
            each, as fast as they can, to one room; RECEIVERS clients
            (spread over the nodes) count what arrives. Reported: room
            messages and deliveries per second (from the first send to the
            last delivery; median of REPEAT runs and their range), how
            many were lost, and the CPU the servers took meanwhile
            (asyncchatd and nats-server, from /proc: seconds, cores busy
            on average, microseconds per delivery, and per room message
            split between asyncchatd and nats-server), beside the cores
            the clients kept busy (what is left of the machine is the
            headroom).
  latency   the senders pace themselves at RATE messages/s in all for
            SECONDS; each message carries its send time (CLOCK_MONOTONIC,
            one clock for every process here): p50/p99 of send -> receive.
  replay    a room of REPLAY messages; a new client joins it with
            since 0, REPEAT times, on a node other than the senders' (the
            cluster: another server): the time from the /join to its
            history-end, every frame read (median and range).

Set-ups:
  single   one asyncchatd: load = chat, history (sync = normal)
  cluster  three asyncchatd: load = chat, cluster (replicas = 3), on three
           nats-server -js joined by routes

Everything runs on 127.0.0.1 with stores under a temp dir; every process
is stopped by pid; the whole run is cut off after --limit seconds.
Standard library (and tests/lib) only. Build first: make.

usage: tools/cluster-bench.py [--builddir DIR] [--messages N]
                              [--senders S] [--receivers R] [--rate X]
                              [--seconds T] [--replay N] [--repeat K]
                              [--setups single,cluster] [--one-node]
"""

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(SRCDIR, "tests", "lib"),
                os.path.join(SRCDIR, "tests", "cluster")]
import acproto  # noqa: E402
import chat  # noqa: E402
import clustertest as ct  # noqa: E402
import harness  # noqa: E402
import loadgen  # noqa: E402

ROOM = "bench"
KEY = ct.KEY


def join(port, nick):
    """A chat client on port, in the bench room (without its past: a since
    beyond any seq)."""
    c = chat.ChatClient.connect(("tcp", "127.0.0.1", port), key=KEY,
                                name=nick)
    c.chat_handshake(nick=nick, rooms=[{"room": ROOM,
                                        "since": 10 ** 15}])
    return c


def receiver(port, nick, expect, ready, results, limit, keep):
    """Count bench messages until `expect` came or none for 5 s; put
    (count, first ns, last ns, latencies) on results; stay until `keep`
    is cleared (so that its CPU time can still be read)."""
    c = join(port, nick)
    ready.put(1)
    dec = acproto.Decoder(KEY.encode(), verify=False)
    dec.feed(c.dec.buf)
    results.put(loadgen.count_stamped(c.sock, dec, expect, limit, 5.0))
    while keep.is_set():
        time.sleep(0.05)
    c.close()


def sender(port, nick, index, count, rate, ready, go, keep):
    """Send `count` messages to the room (paced if rate); then stay, and
    drop what comes, until `keep` is cleared."""
    c = join(port, nick)
    ready.put(1)
    go.wait()
    loadgen.paced(count, rate, lambda i: c.say(loadgen.stamp(index, i),
                                               extra={"room": ROOM}))
    loadgen.drain(c.sock, keep, 120)
    c.close()


def cpu_seconds(pids):
    """utime + stime of the processes, in seconds."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / float(tick)


def run_phase(ports, pids, args, count, rate, limit):
    """Receivers, then senders; the results, the servers' CPU and the
    clients'."""
    ctx = mp.get_context("fork")
    ready, results = ctx.Queue(), ctx.Queue()
    go, keep = ctx.Event(), ctx.Event()
    keep.set()
    expect = count * args.senders
    procs = []
    for i in range(args.receivers):
        p = ctx.Process(target=receiver, args=(
            ports[i % len(ports)], "r%d" % i, expect, ready, results,
            limit, keep))
        p.start()
        procs.append(p)
    for _ in range(args.receivers):
        ready.get(timeout=30)
    for i in range(args.senders):
        p = ctx.Process(target=sender, args=(
            ports[i % len(ports) if args.spread else 0], "s%d" % i, i, count,
            rate / float(args.senders) if rate else 0, ready, go, keep))
        p.start()
        procs.append(p)
    for _ in range(args.senders):
        ready.get(timeout=30)   # each sender's handshake done
    cpids = [p.pid for p in procs]
    cpu0, ccpu0 = cpu_seconds(pids), cpu_seconds(cpids)
    acpu0 = cpu_seconds(pids[:len(ports)])
    t0 = time.monotonic_ns()
    go.set()
    out = [results.get(timeout=limit + 30) for _ in range(args.receivers)]
    t1 = time.monotonic_ns()
    cpu1, ccpu1 = cpu_seconds(pids), cpu_seconds(cpids)
    acpu1 = cpu_seconds(pids[:len(ports)])
    keep.clear()
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)
    ccpu = ccpu1 - ccpu0
    last = max((o[2] for o in out), default=t0)
    secs = max(1e-9, (last - t0) / 1e9)
    return {"expect": expect * args.receivers,
            "got": sum(o[0] for o in out), "secs": secs,
            "msgs": expect, "lat": sorted(x for o in out for x in o[3]),
            "cpu": cpu1 - cpu0, "wall": (t1 - t0) / 1e9,
            "ccpu": ccpu, "acpu": acpu1 - acpu0}


def replay_phase(fill_port, join_port, args):
    """Fill the room with --replay messages; time joins with since 0."""
    c = join(fill_port, "filler")
    for i in range(args.replay):
        c.say("R:%d" % i, extra={"room": ROOM})
    got = 0
    c.sock.settimeout(60)
    while got < args.replay:
        f = c.recv_frame(60)
        got += f.content[:2] == b"R:"
    times = []
    for k in range(args.repeat):
        j = chat.ChatClient.connect(("tcp", "127.0.0.1", join_port),
                                    key=KEY, name="j%d" % k)
        j.chat_handshake(nick="j%d" % k, rooms=[])
        t0 = time.monotonic()
        j.say("/join %s 0" % ROOM)
        n = 0
        while True:
            f = j.recv_frame(60)
            if f.header.get("event") == "history-end" and \
                    f.header.get("room") == ROOM:
                break
            n += f.content[:2] == b"R:"
        times.append((time.monotonic() - t0) * 1000)
        if n < min(args.replay, 1000):
            raise RuntimeError("replay sent %d of %d" % (n, args.replay))
        j.close()
    c.close()
    return sorted(times)


def setup(kind, args):
    """Start a set-up; (client ports, server pids)."""
    if kind == "single":
        d = harness.mkdtemp("acbench-")
        n = harness.Server(plugins=["chat", "history"], unix=False,
                           server={"log_level": "info"},
                           sections={"chat": {}, "history": {
                               "path": os.path.join(d, "history.db"),
                               "max_replay": "1000"}},
                           key=KEY)
        return [n.port], [n.pid]
    js = ct.JsCluster(3).start()
    nodes = [ct.ChatNode(n, js.urls, cluster_opts={"max_replay": "1000"})
             for n in ("a", "b", "c")]
    for n in nodes:
        if not n.wait_ready_cluster(60):
            raise RuntimeError("node %s: no link" % n.name)
    probe = [n.chat(nick="p" + n.name, rooms=[{"room": ROOM}])
             for n in nodes]
    for c in probe:
        if not ct.wait_until(lambda: len(chat.names_of(
                c.cmd("/who " + ROOM), ROOM)) >= 3, 30, 0.1):
            raise RuntimeError("the nodes do not see each other: %r" %
                               chat.names_of(c.cmd("/who " + ROOM), ROOM))
    for c in probe:
        c.close()
    return [n.port for n in nodes], [n.pid for n in nodes] + \
        [s.pid for s in js.servers]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.environ.get("AC_TOP_BUILDDIR",
                                                         os.getcwd()))
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--senders", type=int, default=3)
    ap.add_argument("--receivers", type=int, default=6)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--replay", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=900)
    ap.add_argument("--setups", default="single,cluster")
    ap.add_argument("--one-node", dest="spread", action="store_false",
                    help="every sender on the first node (no two nodes "
                    "sending to the room at once)")
    args = ap.parse_args()

    harness.BUILDDIR = os.path.abspath(args.builddir)
    harness.PLUGINDIR = os.path.join(harness.BUILDDIR, "plugins", ".libs")
    harness.SERVER = os.path.join(harness.BUILDDIR, "src", "server",
                                  "asyncchatd")
    if ct.NATS_SERVER is None:
        sys.exit("nats-server is not installed")
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("time limit"))
    signal.alarm(args.limit)
    print("# %d CPUs, load %.2f %.2f %.2f; %d senders (%s), %d receivers, %d "
          "messages each; latency at %d msg/s for %.0f s; replay of %d; "
          "%d runs" % ((os.cpu_count(),) + os.getloadavg() + (args.senders,
                       "spread" if args.spread else "on one node",
                       args.receivers, args.messages, args.rate,
                       args.seconds, args.replay, args.repeat)))
    print("%-8s %8s %11s %9s %13s %5s %6s %6s %8s %8s %8s %7s %7s %7s "
          "%16s" % (
              "setup", "msgs/s", "(min-max)", "deliv/s", "(min-max)",
              "lost", "srv s", "cores", "us/deliv", "acd/msg", "nats/msg",
              "clients", "p50 ms", "p99 ms", "replay ms"))
    for kind in args.setups.split(","):
        rates, lat, lost, cpus, replays = [], [], 0, [], []
        for _ in range(args.repeat):
            try:
                ports, pids = setup(kind, args)
                tp = run_phase(ports, pids, args, args.messages, 0, 120)
                lt = run_phase(ports, pids, args,
                               max(1, int(args.rate * args.seconds /
                                          args.senders)), args.rate, 120)
                replays += replay_phase(ports[0], ports[-1], args)
            except Exception:
                for n in harness.Server.instances:
                    sys.stderr.write("--- %s\n%s\n" % (
                        n.logpath, n.log()[-2000:]))
                raise
            finally:
                for n in harness.Server.instances:
                    n.stop()
                harness.Server.instances[:] = []
                harness.Process.stop_all()
            rates.append((tp["msgs"] / tp["secs"], tp["got"] / tp["secs"]))
            cpus.append((tp["cpu"], tp["cpu"] / tp["wall"],
                         tp["cpu"] * 1e6 / max(1, tp["got"]),
                         tp["ccpu"] / tp["wall"],
                         tp["acpu"] * 1e6 / max(1, tp["msgs"]),
                         (tp["cpu"] - tp["acpu"]) * 1e6 /
                         max(1, tp["msgs"])))
            lat += lt["lat"]
            lost += tp["expect"] - tp["got"] + lt["expect"] - lt["got"]
        rates.sort()
        lat.sort()
        replays.sort()
        mid = rates[len(rates) // 2]
        cpu = sorted(cpus)[len(cpus) // 2]
        print("%-8s %8.0f %11s %9.0f %13s %5d %6.2f %6.2f %8.1f %8.0f "
              "%8.0f %7.2f %7.2f %7.2f %16s" % (kind, mid[0], "%.0f-%.0f" % (
                  rates[0][0], rates[-1][0]),
                        mid[1], "%.0f-%.0f" % (min(r[1] for r in rates),
                                               max(r[1] for r in rates)),
                        lost, cpu[0], cpu[1], cpu[2], cpu[4], cpu[5],
                        cpu[3], loadgen.pct(lat, 50),
                        loadgen.pct(lat, 99),
                        "%.0f (%.0f-%.0f)" % (statistics.median(replays),
                                              replays[0], replays[-1])))
        sys.stdout.flush()
    print("# load at the end %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
