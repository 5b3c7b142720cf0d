#!/usr/bin/env python3
"""nats-bench.py - measure cross-node fan-out through the nats plugin
against one node alone (docs/SCALING.md).

For each set-up it runs two bounded phases:
  throughput: SENDERS clients send MESSAGES messages each as fast as they
              can; RECEIVERS clients count what arrives. Reported: fan-out
              deliveries per second (messages x receivers / time from the
              first send to the last delivery; the median of REPEAT runs,
              and their range) and how many were lost.
  latency:    the senders pace themselves at RATE messages/s in all for
              SECONDS; each message carries its send time (CLOCK_MONOTONIC,
              shared by every process on the machine). Reported: p50/p99
              of send -> receive over every delivery.
Set-ups:
  single  one asyncchatd (load = broadcast), senders and receivers on it
  2-node  senders on node 1, receivers on node 2 (load = broadcast, nats)
  3-node  senders on node 1, receivers split over nodes 2 and 3

Everything runs on 127.0.0.1; every process is stopped by pid; the whole
run is cut off after --limit seconds. Standard library only.

usage: tools/nats-bench.py [--builddir DIR] [--messages N] [--senders S]
                           [--receivers R] [--rate X] [--seconds T]
                           [--repeat K] [--setups single,2-node,3-node]
                           [--nats-opt KEY=VALUE ...]
"""

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(SRCDIR, "tests", "lib"),
                os.path.join(SRCDIR, "tests", "nats")]
import acproto  # noqa: E402
import harness  # noqa: E402
import loadgen  # noqa: E402
import natstest as nt  # noqa: E402


def connect(port, key, name):
    """A client on port, handshake done, sending text."""
    c = acproto.Client.tcp("127.0.0.1", port, key=key, name=name,
                           content_type=acproto.TEXT_UTF8)
    c.handshake(5.0)
    return c


def receiver(port, key, expect, ready, results, limit):
    """Count bench messages until `expect` arrived or nothing came for 3 s;
    put (count, first ns, last ns, latencies in ns) on results."""
    c = connect(port, key, "r")
    ready.put(1)
    # Framing and CRCs only: the HMAC would cost more than the relay.
    dec = acproto.Decoder(key, verify=False)
    dec.feed(c.dec.buf)
    results.put(loadgen.count_stamped(c.sock, dec, expect, limit, 3.0))
    c.close()


def sender(port, key, index, count, rate, go, keep):
    """Send `count` messages, paced at `rate` per second if rate > 0; then
    read (and drop) until `keep` is cleared."""
    c = connect(port, key, "s%d" % index)
    go.wait()
    loadgen.paced(count, rate,
                  lambda i: c.send("message", loadgen.stamp(index, i)))
    # Stay until the receivers are done, so the session is not closed
    # while its frames are still queued; drain what others send us.
    loadgen.drain(c.sock, keep, 30)
    c.close()


def run_phase(send_port, recv_ports, args, count, rate, limit):
    """One phase: start receivers, then senders; collect the results."""
    ctx = mp.get_context("fork")
    ready, results = ctx.Queue(), ctx.Queue()
    go, keep = ctx.Event(), ctx.Event()
    keep.set()
    expect = count * args.senders
    rprocs = []
    for i in range(args.receivers):
        p = ctx.Process(target=receiver, args=(
            recv_ports[i % len(recv_ports)], nt.KEY, expect, ready, results,
            limit))
        p.start()
        rprocs.append(p)
    for _ in rprocs:
        ready.get(timeout=10)
    sprocs = []
    for i in range(args.senders):
        p = ctx.Process(target=sender, args=(send_port, nt.KEY, i, count,
                                             rate, go, keep))
        p.start()
        sprocs.append(p)
    time.sleep(0.5)     # the senders' handshakes
    t0 = time.monotonic_ns()
    go.set()
    out = [results.get(timeout=limit + 10) for _ in rprocs]
    keep.clear()
    for p in rprocs + sprocs:
        p.join(5)
        if p.is_alive():
            p.kill()
    got = sum(o[0] for o in out)
    last = max((o[2] for o in out), default=t0)
    lat = sorted(x for o in out for x in o[3])
    return {"expect": expect * args.receivers, "got": got,
            "secs": max(1e-9, (last - t0) / 1e9), "lat": lat}


def mesh(send_node, recv_nodes):
    """Wait until a probe from the sending node reaches every other node."""
    s = send_node.client("probe-s")
    rs = [n.client("probe-r") for n in recv_nodes]
    ok = nt.wait_until(lambda: _probe(s, rs), 10, 0.1)
    for c in [s] + rs:
        c.close()
    return ok


def _probe(s, rs):
    s.send("message", "probe")
    return all(any(m[1] == b"probe" for m in r.messages(0.2)) for r in rs)


def setup(kind, nats_opts):
    """Start the processes of a set-up; (sending port, receiving ports)."""
    if kind == "single":
        n = harness.Server(plugins=["broadcast"], unix=False,
                           server={"log_level": "info"},
                           key=nt.KEY.decode())
        return n.port, [n.port]
    g = nt.Gnatsd().start()
    nodes = [nt.Node("n%d" % i, [g.url], nats_opts=nats_opts, start=False)
             for i in range(2 if kind == "2-node" else 3)]
    for n in nodes:
        n.start()
    if not mesh(nodes[0], nodes[1:]):
        raise RuntimeError("the nodes do not hear each other")
    return nodes[0].port, [n.port for n in nodes[1:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.environ.get("AC_TOP_BUILDDIR",
                                                         SRCDIR))
    ap.add_argument("--messages", type=int, default=5000,
                    help="messages per sender, throughput phase")
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--receivers", type=int, default=4)
    ap.add_argument("--rate", type=int, default=1000,
                    help="messages/s in all, latency phase")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="length of the latency phase")
    ap.add_argument("--limit", type=int, default=240,
                    help="cut the whole run off after this many seconds")
    ap.add_argument("--setups", default="single,2-node,3-node")
    ap.add_argument("--nats-opt", action="append", default=[],
                    metavar="KEY=VALUE", help="a [plugin.nats] option for "
                    "every node, e.g. send_asap=yes")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per set-up: the median rate is shown, and "
                    "percentiles over the deliveries of all runs")
    args = ap.parse_args()

    harness.BUILDDIR = os.path.abspath(args.builddir)
    harness.PLUGINDIR = os.environ.get("AC_PLUGIN_BUILDDIR") or \
        os.path.join(harness.BUILDDIR, "plugins", ".libs")
    harness.SERVER = os.path.join(harness.BUILDDIR, "src", "server",
                                  "asyncchatd")
    if nt.NATS_SERVER is None:
        sys.exit("nats-server is not installed")
    signal.signal(signal.SIGALRM, lambda *a: sys.exit("time limit"))
    signal.alarm(args.limit)

    print("# %d CPUs; %d senders, %d receivers; throughput: %d messages "
          "per sender; latency: %d msg/s for %.0f s; %d runs; nats: %s" % (
              os.cpu_count(), args.senders, args.receivers, args.messages,
              args.rate, args.seconds, args.repeat,
              " ".join(args.nats_opt) or "defaults"))
    print("%-8s %12s %17s %8s %10s %10s %10s" % (
        "setup", "deliveries/s", "(min-max)", "lost", "p50 ms", "p99 ms",
        "p99.9 ms"))
    nats_opts = dict(o.split("=", 1) for o in args.nats_opt)
    per_sender = max(1, int(args.rate * args.seconds / args.senders))
    for kind in args.setups.split(","):
        rates, lat, lost = [], [], 0
        for _ in range(args.repeat):
            try:
                sport, rports = setup(kind, nats_opts)
                tp = run_phase(sport, rports, args, args.messages, 0, 60)
                lt = run_phase(sport, rports, args, per_sender,
                               args.rate / float(args.senders), 60)
            finally:
                for n in harness.Server.instances:
                    n.stop()
                    notes = [ln for ln in n.log().splitlines()
                             if " warning " in ln or " error " in ln or
                             "reason=slow" in ln]
                    for ln in notes[:5]:
                        print("# %s: %s" % (n.name, ln))
                harness.Server.instances[:] = []
                harness.Process.stop_all()
            rates.append(tp["got"] / tp["secs"])
            lat += lt["lat"]
            lost += tp["expect"] - tp["got"] + lt["expect"] - lt["got"]
        rates.sort()
        lat.sort()
        print("%-8s %12.0f %17s %8d %10.2f %10.2f %10.2f" % (
            kind, rates[len(rates) // 2], "%.0f-%.0f" % (rates[0], rates[-1]),
            lost, loadgen.pct(lat, 50), loadgen.pct(lat, 99),
            loadgen.pct(lat, 99.9)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
