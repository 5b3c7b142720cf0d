#!/usr/bin/env python3
"""Several asyncchatd nodes joined through NATS (plugins/nats.c).

- 3 nodes on one nats-server, and 3 nodes on a 2-server NATS cluster
  (routes): every message from any client reaches every other client
  exactly once, in per-sender order.
- NATS down at start: local sessions are served; NATS comes up: the link
  comes up by itself and frames cross.
- NATS stopped mid-test: local delivery goes on, the outgoing queue is
  bounded (max_pending); NATS started again on the same port: remote
  delivery resumes without restarting asyncchatd.
- Frames injected straight into the subject: a wrong HMAC (and a frame
  that is not a message) is refused and counted; a good one is delivered.
- Frames within the protocol's limits but above the node's own
  max_content_size or max_header_size: refused and counted.
- A frame above NATS' max_payload: delivered locally, counted, logged.
- user/password: refused by NATS, logged once, retried; let in later.
- SIGTERM right after a burst: what the node took in still crosses.
- TLS with client certificates (openssl makes a throw-away CA).
- SIGHUP reloads (with, without, with the plugin): frames still cross.
- Config errors name the line and the key.

Every wait is bounded; the whole program takes a few seconds.
"""

import re
import signal
import time

import natstest as nt
from natstest import Gnatsd, Node
from metrics import scrape
from pki import certs


def nats_metrics(node):
    """The nats plugin's samples from node's /metrics, by name."""
    m = re.search(r"metrics on (http://\S+/metrics)", node.log())
    if m is None:
        raise AssertionError("no metrics endpoint:\n" + node.log()[-2000:])
    got = scrape(m.group(1))
    return {k[0]: v for k, v in got.samples.items()
            if k[0].startswith("nats_") and k[1] == (("plugin", "nats"),)}


def wait_mesh(probers, others=(), timeout=10.0):
    """Until every prober has heard every other prober's probe (so every
    node's subscription is in place everywhere), probe; then drain all."""
    ids = {c.session_id for c in probers}
    heard = {c.name: set() for c in probers}
    deadline = time.monotonic() + timeout
    done = False
    while not done and time.monotonic() < deadline:
        for c in probers:
            c.send("message", "probe")
        time.sleep(0.1)
        for c in probers:
            for sid, body in c.messages(0.05):
                if body == b"probe":
                    heard[c.name].add(sid)
        done = all(heard[c.name] >= ids - {c.session_id} for c in probers)
    for c in list(probers) + list(others):
        c.sync()
        while c.messages(0.2):
            pass
    return done


def exchange(t, clients, k, label, timeout=10.0):
    """Each client sends k numbered messages (interleaved); every client
    must get all the others' exactly once, in order, and none of its own."""
    index = {c.session_id: c for c in clients}
    for seq in range(k):
        for c in clients:
            c.send("message", "%s:%d" % (c.name, seq))
    want = (len(clients) - 1) * k
    for c in clients:
        got = [m for m in c.collect(want, timeout) if m[1] != b"probe"]
        extra = [m for m in c.messages(0.2) if m[1] != b"probe"]
        got += extra
        per = {}
        bad = []
        for sid, body in got:
            sender = index.get(sid)
            if sender is None or sender is c:
                bad.append((sid, body))
                continue
            name, _, seq = body.decode().partition(":")
            if name != sender.name:
                bad.append((sid, body))
            per.setdefault(name, []).append(int(seq))
        ok = not bad and len(got) == want and all(
            per.get(o.name) == list(range(k)) for o in clients if o is not c)
        t.ok(ok, "%s: %s got each of the %d others' %d messages once, in "
             "order" % (label, c.name, len(clients) - 1, k),
             "got %d of %d; unexpected %r; per sender %r" % (
                 len(got), want, bad[:5],
                 {n: (len(v), v[:10]) for n, v in per.items()}))


def case_three_nodes_one_server(t):
    g = Gnatsd().start()
    nodes = [Node("n%d" % i, [g.url]) for i in range(3)]
    for n in nodes:
        t.ok(n.wait_log(r"link to NATS up"), "%s: link up" % n.name)
    clients = [n.client("%s-c%d" % (n.name, j)) for n in nodes
               for j in range(2)]
    t.ok(wait_mesh(clients[::2], clients[1::2]), "every node hears every "
         "other node")
    exchange(t, clients, 25, "one NATS server")


def case_three_nodes_cluster(t):
    c1, c2 = nt.free_port(), nt.free_port()
    g1 = Gnatsd(cluster_port=c1, routes=[c2]).start()
    g2 = Gnatsd(cluster_port=c2, routes=[c1]).start()
    t.ok(g1.routed(1) and g2.routed(1), "the two NATS servers are routed")
    nodes = [Node("x", [g1.url]), Node("y", [g2.url]),
             Node("z", [g2.url, g1.url])]
    for n in nodes:
        t.ok(n.wait_log(r"link to NATS up"), "%s: link up" % n.name)
    clients = [n.client("%s-c%d" % (n.name, j)) for n in nodes
               for j in range(2)]
    t.ok(wait_mesh(clients[::2], clients[1::2]), "every node hears every "
         "other node across the route")
    exchange(t, clients, 25, "NATS cluster")


def case_nats_down_at_start(t):
    port = nt.free_port()
    url = "nats://127.0.0.1:%d" % port
    a = Node("a", [url])
    t.ok(a.wait_log(r"link to NATS down"), "NATS down at start: logged, "
         "the server runs")
    a1, a2 = a.client("a1"), a.client("a2")
    a1.send("message", "local")
    t.eq([m[1] for m in a2.collect(1, 3)], [b"local"],
         "NATS down at start: local sessions are served")
    g = Gnatsd(port=port).start()
    t.ok(a.wait_log(r"link to NATS up", 10), "the link comes up by itself "
         "when NATS starts")
    b = Node("b", [g.url])
    b1 = b.client("b1")
    t.ok(wait_mesh([a1, b1], [a2]), "frames cross once NATS is up")


def case_nats_restart(t):
    g = Gnatsd().start()
    a = Node("a", [g.url], nats_opts={"max_pending": "5"}, metrics=True)
    b = Node("b", [g.url])
    a1, a2, b1 = a.client("a1"), a.client("a2"), b.client("b1")
    t.ok(wait_mesh([a1, b1], [a2]), "before the restart: frames cross")
    m = nats_metrics(a)
    t.ok(m.get("nats_link_up") == 1 and m.get("nats_published_total", 0) > 0
         and m.get("nats_received_total", 0) > 0 and
         m.get("nats_delivered_total", 0) > 0 and
         m.get("nats_dropped_total") == 0, "metrics: link up, frames "
         "published, received and delivered, none dropped", repr(m))

    g.stop()
    t.ok(a.wait_log(r"link to NATS down") and b.wait_log(
        r"link to NATS down"), "NATS stopped: both nodes log the link down")
    for i in range(10):
        a1.send("message", "a1:%d" % i)
    got = a2.collect(10, 5)
    t.eq([m[1] for m in got], [b"a1:%d" % i for i in range(10)],
         "NATS down: local delivery goes on, in order")
    t.ok(a.wait_log(r"outgoing queue full \(5 frames, max_pending 5; "
                    r"link down\)"), "past max_pending, frames are dropped "
         "and that is logged")
    m = nats_metrics(a)
    t.eq((m.get("nats_link_up"), m.get("nats_queue_frames"),
          m.get("nats_dropped_total")), (0, 5, 5),
         "metrics: link down, queue at max_pending, the drops counted")
    t.eq(b1.messages(0.3), [], "NATS down: nothing reaches the other node")

    g = Gnatsd(port=g.port).start()
    t.ok(a.wait_log(r"link to NATS up", 10, count=2) and
         b.wait_log(r"link to NATS up", 10, count=2), "NATS back on the same "
         "port: both nodes reconnect by themselves")
    t.ok(a.wait_log(r"5 frames were dropped while the link was down"),
         "the frames dropped while down are counted")
    # The 5 queued frames went out at reconnect: at most once, so b1 may
    # have them or not (b may have resubscribed after a published).
    late = [m for m in b1.messages(0.5) if m[1] != b"probe"]
    t.diag("%d of the 5 frames queued while NATS was down reached b" %
           len(late))
    t.ok(wait_mesh([a1, b1], [a2]), "remote delivery resumes without "
         "restarting asyncchatd")
    # a has max_pending 5, which also bounds a burst while the link is up.
    exchange(t, [a1, a2, b1], 2, "after the restart")


def case_injected_frames(t):
    g = Gnatsd().start()
    a = Node("a", [g.url])
    b = Node("b", [g.url])
    a1, a2, b1 = a.client("a1"), a.client("a2"), b.client("b1")
    t.ok(wait_mesh([a1, b1], [a2]), "nodes meshed")
    subject = "asyncchat.broadcast"
    forged = nt.encode("message", "forged", a1.session_id,
                       key=b"not-the-key")
    nt.nats_publish(g.port, subject, [forged])
    t.ok(a.wait_log(r"refused a frame from NATS \(node unknown\): hmac") and
         b.wait_log(r"refused a frame from NATS \(node unknown\): hmac"),
         "a frame with a wrong HMAC is refused, and logged, on every node")
    nt.nats_publish(g.port, subject, [forged, forged[:-1], b"junk"])
    time.sleep(0.3)
    t.eq(len(a.log().split("refused a frame from NATS")) - 1, 1,
         "one log line per streak of bad frames")
    t.ok(all(not c.messages(0.2) for c in (a1, a2, b1)),
         "no client sees a refused frame")
    init = nt.encode("session_init", "Session established", a1.session_id)
    good = nt.encode("message", "signed", None)
    nt.nats_publish(g.port, subject, [init, good])
    for c in (a1, a2, b1):
        t.eq([m[1] for m in c.collect(1, 3)], [b"signed"],
             "%s: a good frame injected into the subject is delivered" %
             c.name)
    t.ok(a.wait_log(r"good frames from NATS again, after 5 refused"),
         "the streak's end is logged with its count")
    t.eq(a.stop(), 0, "node a stops cleanly")
    t.ok(nt.wait_until(lambda: "5 refused" in a.log(), 2),
         "the refused frames are counted (5: hmac, truncated, junk, "
         "session_init)")


def case_server_limits(t):
    """Frames from NATS are held to this server's max_content_size and
    max_header_size, not to the protocol's larger defaults: a signed frame
    a local client could not send is refused here too."""
    g = Gnatsd().start()
    limits = {"max_content_size": "1000", "max_header_size": "512"}
    a = Node("a", [g.url], server_opts=limits)
    b = Node("b", [g.url])
    a1, b1 = a.client("a1"), b.client("b1")
    t.ok(wait_mesh([a1, b1]), "limits: nodes meshed")
    subject = "asyncchat.broadcast"
    big = nt.encode("message", b"c" * 1001, a1.session_id)
    wide = nt.encode("message", "wide header", a1.session_id,
                     extra={"pad": "h" * 500})
    nt.nats_publish(g.port, subject, [big])
    t.ok(a.wait_log(r"refused a frame from NATS \(node unknown\): "
                    r"content_too_large"),
         "limits: content over max_content_size (1001 > 1000) refused",
         a.log()[-1500:])
    nt.nats_publish(g.port, subject, [wide])
    edge = nt.encode("message", b"e" * 1000, a1.session_id)
    nt.nats_publish(g.port, subject, [edge])
    t.eq([len(m[1]) for m in a1.collect(1, 5)], [1000],
         "limits: a frame within them is delivered, the two others not")
    t.eq([len(m[1]) for m in b1.collect(3, 5)], [1001, 11, 1000],
         "limits: the node with the default limits takes all three")
    t.eq(a.stop(), 0, "limits: node a stops cleanly")
    t.ok(nt.wait_until(lambda: "2 refused" in a.log(), 2),
         "limits: both counted as refused (content_too_large, "
         "header_too_large)", a.log()[-1500:])


def case_too_large(t):
    """A frame above NATS' max_payload (1 MB by default) cannot cross: it
    is delivered locally, counted and logged; the next one crosses."""
    g = Gnatsd().start()
    a = Node("a", [g.url])
    b = Node("b", [g.url])
    a1, a2, b1 = a.client("a1"), a.client("a2"), b.client("b1")
    t.ok(wait_mesh([a1, b1], [a2]), "nodes meshed")
    big = b"x" * (1536 * 1024)
    a1.send("message", big)
    t.eq([len(m[1]) for m in a2.collect(1, 5)], [len(big)],
         "a 1.5 MB message is delivered on its own node")
    t.ok(a.wait_log(r"publish to asyncchat\.broadcast failed: .*raise "
                    r"max_payload"), "the refused publish is logged with "
         "the fix")
    a1.send("message", "small")
    t.eq([m[1] for m in b1.collect(1, 5)], [b"small"],
         "the next message crosses; the big one did not")
    t.ok(a.wait_log(r"publishing again after 1 failed"),
         "the end of the failure streak is logged")


def case_shutdown_flush(t):
    """What a node has queued when it is told to stop still goes out."""
    g = Gnatsd().start()
    a = Node("a", [g.url])
    b = Node("b", [g.url])
    a1, b1 = a.client("a1"), b.client("b1")
    t.ok(wait_mesh([a1, b1]), "nodes meshed")
    for i in range(300):
        a1.send("message", "last:%d" % i)
    a1.sync()
    t.eq(a.stop(), 0, "node a stops cleanly right after")
    got = [m[1] for m in b1.collect(300, 5)]
    t.eq(got, [b"last:%d" % i for i in range(300)], "every message a had "
         "taken in before SIGTERM reached b, in order")


def case_auth(t):
    """user/password: a node with the wrong password stays local (and says
    why once); when NATS lets it in, its link comes up by itself."""
    g = Gnatsd(extra=["--user", "chat", "--pass", "s3cret"]).start()
    a = Node("a", [g.url], nats_opts={"user": "chat", "password": "wrong"})
    b = Node("b", [g.url], nats_opts={"user": "chat", "password": "s3cret"})
    t.ok(b.wait_log(r"link to NATS up"), "the right password: link up")
    t.ok(a.wait_log(r"NATS connection given up: .*check servers, "
                    r"credentials"), "the wrong password: logged")
    time.sleep(0.6)
    t.eq(len(a.log().split("connection given up")) - 1, 1,
         "the retries are not logged again")
    g.stop()
    g = Gnatsd(port=g.port).start()
    t.ok(a.wait_log(r"link to NATS up", 10), "NATS without authorisation: "
         "the rejected node gets in by itself")
    t.ok(wait_mesh([a.client("a1"), b.client("b1")]), "frames cross")


def case_tls(t):
    """TLS with client certificates: tls_ca, tls_cert/tls_key,
    tls_hostname; a node without a client certificate is refused."""
    pki = certs()       # skips the rest of the case without openssl
    g = Gnatsd(extra=["--tlsverify", "--tlscert", pki.srv_crt, "--tlskey",
                      pki.srv_key, "--tlscacert", pki.ca_crt]).start()
    url = "tls://127.0.0.1:%d" % g.port
    tls = {"tls_ca": pki.ca_crt, "tls_cert": pki.cli_crt,
           "tls_key": pki.cli_key}
    a = Node("a", [url], nats_opts=tls)
    b = Node("b", [url], nats_opts=dict(tls, tls_hostname="localhost"))
    c = Node("c", [url], nats_opts={"tls_ca": pki.ca_crt})
    t.ok(a.wait_log(r"link to NATS up \(tls://") and
         b.wait_log(r"link to NATS up \(tls://"), "TLS with a client "
         "certificate: both links up")
    t.ok(wait_mesh([a.client("a1"), b.client("b1")]), "frames cross over "
         "TLS")
    t.ok(c.wait_log(r"NATS connection given up") and
         "link to NATS up" not in c.log(), "no client certificate: refused")


def case_reload(t):
    """SIGHUP re-initialises the plugin (the new instance starts before the
    old one stops); frames must still cross and verify, also after a reload
    without the plugin and one with it again.
    """
    g = Gnatsd().start()
    a = Node("a", [g.url])
    b = Node("b", [g.url])
    a1, b1 = a.client("a1"), b.client("b1")
    t.ok(wait_mesh([a1, b1]), "before the reload: frames cross")
    conf = open(a.conf).read()
    for i, text in enumerate([conf, conf.replace("load = broadcast, nats",
                                                 "load = broadcast"), conf]):
        with open(a.conf, "w") as f:
            f.write(text)
        a.proc.send_signal(signal.SIGHUP)
        t.ok(a.wait_log(r"configuration reloaded", 5, count=i + 1),
             "reload %d done" % (i + 1))
    t.ok(a.wait_log(r"link to NATS up", 10, count=3), "the link is up after the "
         "reloads")
    t.ok(wait_mesh([a1, b1]), "after the reloads: frames cross both ways "
         "and verify")
    t.ok("refused a frame" not in a.log(), "no frame refused after the "
         "reloads")


def case_config(t):
    g = Gnatsd().start()
    n = Node("c", [g.url], nats_opts={"max_pending": "10",
                                      "colour": "blue"}, start=False)
    lines = open(n.conf).read().splitlines()
    line = lines.index("colour = blue") + 1
    rc, out = n.check(timeout=20)
    t.ok(rc == 1 and ("line %d" % line) in out and "colour" in out,
         "an unknown key is refused, naming its line and key", out)
    n2 = Node("d", [g.url], nats_opts={"max_pending": "lots"}, start=False)
    rc, out = n2.check(timeout=20)
    t.ok(rc == 1 and "max_pending" in out and "lots" in out,
         "a bad value is refused, naming the key", out)
    n3 = Node("e", ["nats://127.0.0.1:%d" % nt.free_port()], start=False)
    began = time.monotonic()
    rc, out = n3.check(timeout=20)
    took = time.monotonic() - began
    t.ok(rc == 0 and took < 5, "-t passes without a NATS server, "
         "in %.1f s" % took, out)


if __name__ == "__main__":
    nt.main([case_three_nodes_one_server, case_three_nodes_cluster,
             case_nats_down_at_start, case_nats_restart,
             case_injected_frames, case_server_limits, case_too_large,
             case_shutdown_flush,
             case_auth, case_tls,
             case_reload, case_config])
