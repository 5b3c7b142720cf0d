#!/usr/bin/env python3
"""Soak test (issue 6): 200 well-behaved clients chat through broadcast
while hostile connections run beside them; nothing may be lost.

asyncchatd runs the broadcast plugin (include_sender = no) with
max_output_buffer = 2M.  The well-behaved clients (two worker processes,
non-blocking sockets and selectors, half over TCP and half over unix) all
handshake, then each sends a numbered message every 1/RATE seconds for
SECONDS and reads everything.  At the same time, threads of this process:

  vectors    send every invalid vector of frames.json, one connection each,
             and expect the specified error frame
  slowloris  trickles a frame header one byte per second without ever
             acknowledging: the handshake timeout must close it
  vanish     connects, handshakes and goes away mid-frame (FIN or RST)
  flooder    sends heartbeat pings without reading the pongs: the server
             must close it as a slow consumer
  reconnect  connects, handshakes, pings and leaves, in a loop

At the end every well-behaved client must have received every message of
every other one exactly once and in per-sender order (lost 0, duplicated
0), the server's peak RSS (VmHWM) must stay under --rss-mb, and SIGTERM
must stop it with status 0.  The figures are printed as TAP diagnostics.

Every loop is bounded in count and time; the whole run takes about
SECONDS + 20 s.  Not in `make check`: `make check-soak` runs it.

    soak.py [--seconds 60] [--clients 200] [--rate 1.0] [--rss-mb 200]
            [--server-opt KEY=VALUE ...]
"""

import argparse
import json
import multiprocessing
import os
import random
import re
import selectors
import signal
import socket
import struct
import threading
import time

import acproto
from harness import VECTORS, Server, main

HANDSHAKE_TIMEOUT = 5
HEARTBEAT_TIMEOUT = 30
MAX_OUTPUT = "2M"       # so max_content_size is 1M (a frame must fit)
PHASE_TIMEOUT = 120.0   # bound on connecting and on draining, each
PAD = b"." * 64         # message size: about 64 + 130 + 90 bytes
# How the server may end a flooder's session (the log's reason token).
FLOOD_REASONS = ("slow-consumer",)

ARGS = None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="how long the clients chat (default 60)")
    ap.add_argument("--clients", type=int, default=200,
                    help="well-behaved clients (default 200)")
    ap.add_argument("--rate", type=float, default=1.0,
                    help="messages per second per client (default 1)")
    ap.add_argument("--workers", type=int, default=2,
                    help="processes the clients are spread over (default 2)")
    ap.add_argument("--rss-mb", type=float, default=200.0,
                    help="bound on the server's peak RSS in MB (default 200)")
    ap.add_argument("--server-opt", action="append", default=[],
                    metavar="KEY=VALUE", help="extra [server] option")
    return ap.parse_args()


# -- well-behaved clients (worker processes) -----------------------------

class Peer:
    """One well-behaved client's socket, buffers and tallies."""

    def __init__(self, gi, nclients, client):
        self.gi = gi
        self.sock = client.sock
        self.sid = client.session_id
        self.key = client.key
        # Some 20,000 frames a second per worker: frame them and check
        # their CRCs, but leave out the HMAC and JSON checks (the content
        # is what is judged).
        self.dec = acproto.Decoder(client.key, verify=False)
        self.dec.feed(client.dec.buf)
        self.out = bytearray()
        self.next_seq = [0] * nclients   # per sender: next number expected
        self.sent = 0
        self.delivered = 0
        self.dups = 0
        self.gaps = 0
        self.own = 0          # own messages echoed back (include_sender = no)
        self.foreign = 0      # messages not from a well-behaved client
        self.pongs = 0
        self.bad = []         # errors, disconnects, EOF: must stay empty
        self.sock.setblocking(False)

    def queue(self, data):
        self.out += data

    def flush(self):
        while self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError as e:
                self.bad.append("send: %s" % e)
                self.out.clear()
                return
            del self.out[:n]

    def read(self):
        while True:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                break
            except OSError as e:
                self.bad.append("recv: %s" % e)
                return False
            if not data:
                self.bad.append("EOF from the server")
                return False
            self.dec.feed(data)
        self.parse()
        return True

    def parse(self):
        for item in self.dec:
            if isinstance(item, acproto.FrameError):
                self.bad.append("%s from the server" % item.token)
            else:
                self.frame(item.header_json, item.content)

    def frame(self, header, content):
        if content.startswith(b"soak:"):
            _, s, q, _ = content.split(b":", 3)
            s, q = int(s), int(q)
            if s == self.gi:
                self.own += 1
            elif q == self.next_seq[s]:
                self.next_seq[s] += 1
                self.delivered += 1
            elif q < self.next_seq[s]:
                self.dups += 1
            else:
                self.gaps += q - self.next_seq[s]
                self.next_seq[s] = q + 1
            return
        if content == b"pong" and b'"heartbeat"' in header:
            self.pongs += 1
            return
        if b'"error"' in header or b'"disconnect"' in header:
            self.bad.append("%s %s" % (header[:120], content[:120]))
            return
        self.foreign += 1

    def message(self):
        content = b"soak:%d:%d:%s" % (self.gi, self.sent, PAD)
        self.sent += 1
        return acproto.encode("message", content, self.sid, acproto.TEXT_UTF8,
                              self.key)

    def ping(self):
        return acproto.encode("heartbeat", b"ping", self.sid, acproto.OCTETS,
                              self.key)


def pump(sel, peers, timeout):
    """Wait up to timeout for the sockets; read and write what is ready."""
    for key, events in sel.select(timeout):
        p = key.data
        if events & selectors.EVENT_READ:
            if not p.read():
                sel.unregister(p.sock)
                peers.remove(p)
                continue
        if events & selectors.EVENT_WRITE:
            p.flush()
    for p in peers:
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if p.out else 0)
        if sel.get_key(p.sock).events != want:
            sel.modify(p.sock, want, p)


def wait_pongs(sel, live, want, deadline):
    """Pump until every live peer has want pongs or the deadline."""
    while time.monotonic() < deadline and any(p.pongs < want for p in live):
        pump(sel, live, 0.05)


def worker(indices, nclients, addrs, seconds, rate, barrier, results):
    """Run the well-behaved clients of indices; put their tallies."""
    random.seed(os.getpid())
    peers, report = [], {"error": None}
    try:
        for gi in indices:
            c = acproto.Client.connect(addrs[gi % 2], key=acproto.DEFAULT_KEY,
                                       timeout=30.0, name="wb%d" % gi)
            c.handshake(timeout=30.0)
            if c.pushback:
                raise RuntimeError("wb%d: frames before the first pong: %r"
                                   % (gi, c.pushback))
            peers.append(Peer(gi, nclients, c))
    except Exception as e:
        report["error"] = "connecting: %r" % e
    sel = selectors.DefaultSelector()
    for p in peers:
        sel.register(p.sock, selectors.EVENT_READ, p)
    live = list(peers)
    try:
        barrier.wait(PHASE_TIMEOUT)            # 1: everyone is connected
        start = time.monotonic()
        end = start + seconds
        period = 1.0 / rate
        due = {p.gi: start + period * random.random() for p in peers}
        while time.monotonic() < end:
            now = time.monotonic()
            for p in live:
                if due[p.gi] <= now:
                    p.queue(p.message())
                    p.flush()
                    due[p.gi] += period
            nxt = min(due.values()) if due else end
            pump(sel, live, max(0.0, min(nxt, end) - time.monotonic()))
        # A pong after the last message: the server has relayed all of
        # this client's messages. Once every client has one, a second
        # pong means every relay to this client has arrived.
        for p in live:
            p.queue(p.ping())
            p.flush()
        wait_pongs(sel, live, 1, time.monotonic() + PHASE_TIMEOUT)
        barrier.wait(PHASE_TIMEOUT)            # 2: all messages relayed
        for p in live:
            p.queue(p.ping())
            p.flush()
        wait_pongs(sel, live, 2, time.monotonic() + PHASE_TIMEOUT)
    except threading.BrokenBarrierError:
        report["error"] = report["error"] or "a barrier broke"
    except Exception as e:
        report["error"] = report["error"] or "running: %r" % e
        barrier.abort()
    report["peers"] = [{
        "gi": p.gi, "sent": p.sent, "delivered": p.delivered,
        "next_seq": p.next_seq, "dups": p.dups, "gaps": p.gaps, "own": p.own,
        "foreign": p.foreign, "pongs": p.pongs, "bad": p.bad[:5],
    } for p in peers]
    report["indices"] = list(indices)
    results.put(report)
    for p in peers:
        p.sock.close()


# -- hostile connections (threads of the test process) -------------------

class Adversary(threading.Thread):
    """A loop of hostile connections until stop is set (or max_runs)."""

    max_runs = 100000

    def __init__(self, srv, stop):
        threading.Thread.__init__(self, name=type(self).__name__, daemon=True)
        self.srv = srv
        self.stop = stop
        self.runs = 0
        self.ok = 0
        self.problems = []

    def run(self):
        while not self.stop.is_set() and self.runs < self.max_runs:
            self.runs += 1
            try:
                if self.once():
                    self.ok += 1
            except Exception as e:
                if len(self.problems) < 10:
                    self.problems.append("%s run %d: %r" % (self.name, self.runs, e))

    def connect(self, transport=None, **kw):
        tr = transport or random.choice(("tcp", "unix"))
        return acproto.Client.connect(self.srv.addr(tr), key=self.srv.key,
                                      timeout=10.0, name=self.name, **kw)


class Vectors(Adversary):
    """Every invalid vector, one connection each, round and round."""

    def __init__(self, srv, stop):
        Adversary.__init__(self, srv, stop)
        with open(VECTORS) as f:
            self.vectors = json.load(f)["invalid"]

    def once(self):
        v = self.vectors[(self.runs - 1) % len(self.vectors)]
        with self.connect() as c:
            c.handshake(timeout=10.0)
            c.send_raw(bytes.fromhex(v["frame_hex"]))
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                f = c.recv_frame(max(0.0, deadline - time.monotonic()))
                if f.type == "error":
                    if f.header.get("error") == v["error"]:
                        time.sleep(0.01)
                        return True
                    raise AssertionError("%s: got %r" % (v["name"], f))
        time.sleep(0.05)
        return False


class Slowloris(Adversary):
    """One header byte a second, never acknowledging: closed in time."""

    def __init__(self, srv, stop):
        Adversary.__init__(self, srv, stop)
        self.close_after = []

    def once(self):
        with self.connect() as c:
            c.handshake(ack=False, timeout=10.0)
            t0 = time.monotonic()
            trickle = c.frame("message", b"slow" * 100)
            for i in range(len(trickle)):
                if time.monotonic() - t0 > 3 * HANDSHAKE_TIMEOUT:
                    raise AssertionError("still open after %.1f s" %
                                         (time.monotonic() - t0))
                try:
                    c.send_raw(trickle[i:i + 1])
                    frames = c.expect_silence(1.0)
                except acproto.Closed:
                    break
                except OSError:
                    break
                if any(f.type == "disconnect" for f in frames):
                    reason = [f for f in frames if f.type == "disconnect"][-1].json()
                    if reason.get("reason") != "Handshake timeout":
                        raise AssertionError("disconnect: %r" % reason)
                    c.is_closed(5.0)
                    break
            self.close_after.append(time.monotonic() - t0)
            return self.close_after[-1] <= HANDSHAKE_TIMEOUT + 3.0


class Vanish(Adversary):
    """Handshake, half a frame, gone (FIN or RST)."""

    def once(self):
        c = self.connect()
        try:
            if random.random() < 0.8:
                c.handshake(timeout=10.0, sync=random.random() < 0.5)
            frame = c.frame("message", b"vanish" * random.randint(1, 200))
            c.send_raw(frame[:random.randint(1, len(frame) - 1)])
            if random.random() < 0.5:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
        finally:
            c.close()
        time.sleep(0.05)
        return True


class Flooder(Adversary):
    """Pings without ever reading the pongs: a slow consumer to close.

    5000 pings a second: the pongs pile up at some 0.9 MB/s, while the
    pings stay under the default per-session message and byte rates, so
    that it is the output bound that ends the session, not a rate limit.
    """

    max_runs = 6
    batch = 250
    every = 0.05

    def __init__(self, srv, stop):
        Adversary.__init__(self, srv, stop)
        self.sids = []
        self.closed_sids = []   # the runs the server ended

    def once(self):
        c = self.connect(rcvbuf=4096)
        try:
            c.handshake(timeout=10.0, sync=False)
            self.sids.append(c.session_id)
            batch = c.frame("heartbeat", b"ping") * self.batch
            c.sock.settimeout(10.0)
            deadline = time.monotonic() + 30.0
            due = time.monotonic()
            closed = False
            while time.monotonic() < deadline and not self.stop.is_set():
                due += self.every
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    c.sock.sendall(batch)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                except socket.timeout:
                    raise AssertionError("server stopped reading but kept "
                                         "the connection for 10 s")
            # A run the end of the soak cut short proves nothing either
            # way: only the sessions the server ended are judged.
            if closed:
                self.closed_sids.append(c.session_id)
            elif not self.stop.is_set():
                raise AssertionError("flooder not disconnected in 30 s")
        finally:
            c.close()
        self.stop.wait(5.0)
        return True


class Reconnect(Adversary):
    """Connect, handshake, ping, leave (disconnect frame or not), again."""

    def once(self):
        with self.connect() as c:
            c.handshake(timeout=10.0)
            if random.random() < 0.5:
                c.send("disconnect", b"bye")
                c.is_closed(5.0)
        time.sleep(0.05)
        return True


def rss_sampler(pid, stop, samples):
    """Sample the server's VmRSS and VmHWM (kB) every half second."""
    while not stop.is_set():
        s = read_status(pid)
        if s:
            samples.append(s)
        stop.wait(0.5)


def read_status(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for k in ("VmRSS", "VmHWM"):
        m = re.search(r"^%s:\s+(\d+) kB" % k, text, re.M)
        if m:
            out[k] = int(m.group(1))
    return out


# -- the test ------------------------------------------------------------

def case_soak(t):
    a = ARGS
    n = a.clients
    opts = {"max_clients": max(2000, 4 * n), "max_output_buffer": MAX_OUTPUT,
            "max_content_size": "1M",
            "handshake_timeout": HANDSHAKE_TIMEOUT,
            "heartbeat_timeout": HEARTBEAT_TIMEOUT, "log_level": "info",
            "backlog": 512}
    for kv in a.server_opt:
        k, _, v = kv.partition("=")
        opts[k.strip()] = v.strip()
    t0 = time.monotonic()
    srv = Server(plugins=["broadcast"], server=opts,
                 sections={"broadcast": {"include_sender": "no"}})
    t.ok(True, "server started (pid %d)" % srv.pid)

    samples, stop_rss = [], threading.Event()
    sampler = threading.Thread(target=rss_sampler, daemon=True,
                               args=(srv.pid, stop_rss, samples))
    sampler.start()

    # Worker processes first: fork before any other thread talks.
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(a.workers + 1)
    results = ctx.Queue()
    addrs = [srv.addr("tcp"), srv.addr("unix")]
    procs = []
    for w in range(a.workers):
        idx = list(range(w, n, a.workers))
        p = ctx.Process(target=worker, daemon=True,
                        args=(idx, n, addrs, a.seconds, a.rate, barrier, results))
        p.start()
        procs.append(p)

    stop = threading.Event()
    advs = [Vectors(srv, stop), Slowloris(srv, stop), Vanish(srv, stop),
            Flooder(srv, stop), Reconnect(srv, stop)]
    phase = "connecting"
    try:
        barrier.wait(PHASE_TIMEOUT)
        t_chat = time.monotonic()
        t.diag("%d clients connected in %.1f s" % (n, t_chat - t0))
        for adv in advs:
            adv.start()
        phase = "chatting"
        barrier.wait(a.seconds + PHASE_TIMEOUT)
        phase = "draining"
    except threading.BrokenBarrierError:
        t.diag("a worker gave up while %s" % phase)
    reports = []
    for _ in procs:
        try:
            reports.append(results.get(timeout=PHASE_TIMEOUT))
        except Exception:
            break
    t_done = time.monotonic()
    stop.set()
    for adv in advs:
        adv.join(20.0)
    for p in procs:
        p.join(10.0)
        if p.is_alive():
            p.kill()

    # Tallies of the well-behaved clients.
    errors = [r["error"] for r in reports if r["error"]]
    peers = [p for r in reports for p in r["peers"]]
    t.ok(not errors and len(peers) == n,
         "%d well-behaved clients ran to the end" % n,
         "%d of %d reported; %s" % (len(peers), n, errors))
    sent = {p["gi"]: p["sent"] for p in peers}
    total_sent = sum(sent.values())
    expected = sum(total_sent - sent[p["gi"]] for p in peers)
    delivered = sum(p["delivered"] for p in peers)
    tail = sum(sent[s] - p["next_seq"][s] for p in peers for s in sent
               if s != p["gi"])
    lost = sum(p["gaps"] for p in peers) + tail
    dups = sum(p["dups"] for p in peers)
    own = sum(p["own"] for p in peers)
    bad = [(p["gi"], p["bad"]) for p in peers if p["bad"]]
    foreign = sum(p["foreign"] for p in peers)
    t.diag("clients: %d; messages sent: %d; deliveries: %d of %d expected"
           % (n, total_sent, delivered, expected))
    t.diag("lost: %d; duplicated: %d; own messages back: %d; other frames: %d"
           % (lost, dups, own, foreign))
    t.ok(total_sent >= n * a.seconds * a.rate * 0.9,
         "every client sent its messages (%d)" % total_sent)
    t.eq(lost, 0, "lost 0")
    t.eq(dups, 0, "duplicated 0 (and in per-sender order)")
    t.eq(delivered, expected, "every message delivered to every other client")
    t.eq(own, 0, "no client got its own messages (include_sender = no)")
    t.eq(bad, [], "no well-behaved client got an error, a disconnect or EOF")

    # The hostile connections.
    for adv in advs:
        t.diag("%s: %d runs, %d as expected%s" % (
            adv.name, adv.runs, adv.ok,
            "; " + "; ".join(adv.problems) if adv.problems else ""))
    vec, slow, van, flood, rec = advs
    t.ok(vec.runs >= 17 and vec.ok >= vec.runs - 1 and not vec.problems,
         "invalid vectors: each answered with its error (%d sent)" % vec.ok)
    t.ok(slow.runs >= 1 and slow.ok >= slow.runs - 1 and not slow.problems,
         "slowloris: closed by the handshake timeout (after %s s)"
         % ", ".join("%.1f" % x for x in slow.close_after))
    t.ok(van.runs >= 10 and not van.problems,
         "vanish mid-frame: %d connections" % van.runs)
    log = srv.log()
    closed_slow = [sid for sid in flood.closed_sids if re.search(
        r"session %s closed reason=(%s) " % (re.escape(sid), "|".join(
            map(re.escape, FLOOD_REASONS))), log)]
    t.ok(len(flood.closed_sids) >= 1
         and len(closed_slow) == len(flood.closed_sids)
         and not flood.problems,
         "flooder: closed as a slow consumer (%d of %d the server ended; "
         "%d runs)" % (len(closed_slow), len(flood.closed_sids),
                       len(flood.sids)))
    t.ok(rec.runs >= 10 and rec.ok >= rec.runs - 1 and not rec.problems,
         "reconnect loop: %d sessions" % rec.ok)

    # Memory and the end.
    stop_rss.set()
    sampler.join(2.0)
    last = read_status(srv.pid) or {}
    hwm = max([s.get("VmHWM", 0) for s in samples] + [last.get("VmHWM", 0)])
    rss = max([s.get("VmRSS", 0) for s in samples] + [0])
    t.diag("peak RSS: %.1f MB (VmHWM; highest VmRSS sample %.1f MB); "
           "bound %.0f MB" % (hwm / 1024.0, rss / 1024.0, a.rss_mb))
    t.ok(0 < hwm <= a.rss_mb * 1024, "server peak RSS under %.0f MB" % a.rss_mb)
    with srv.client("tcp") as idle:
        ts = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(10.0)
        try:
            frames = idle.recv_until_closed(5.0)
        except acproto.Timeout:
            frames = []
    if rc is None:
        srv.kill()
    t.eq(rc, 0, "SIGTERM: clean exit 0 (%.1f s)" % (time.monotonic() - ts))
    t.ok(any(f.type == "disconnect" for f in frames),
         "SIGTERM: a connected client was told", repr(frames))
    t.diag("duration: %.1f s (chat %.1f s)" % (time.monotonic() - t0,
                                               t_done - t_chat)
           if phase != "connecting" else "duration: %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    ARGS = parse_args()
    main([case_soak])
