#!/usr/bin/env python3
"""Flood limits of a live asyncchatd (issue 6, Limits): max_clients_per_ip,
max_message_rate and max_byte_rate with rate_burst and
rate_limit_disconnect, bounded error replies, SIGHUP, the defaults, the
config checks, and the bound on a session's input buffer."""

import os
import re
import signal
import socket
import threading
import time

import acproto
from chat import connect
from harness import SERVER, Server, ipv6_available, main
from metrics import metrics_url, scrape


def frames_for(c, timeout):
    """Every frame that arrives within timeout (stops early at EOF)."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        try:
            got.append(c.recv_frame(left))
        except (acproto.Timeout, acproto.Closed):
            return got


def errors_of(frames, token):
    return [f for f in frames if f.type == "error" and f.header.get("error") == token]


def refused(c):
    """(frame or exception, closed?) for a connection expected to be refused."""
    try:
        f = c.recv_frame(3)
    except (acproto.Closed, acproto.Timeout) as e:
        return e, True
    return f, c.is_closed(2)


def case_per_ip_limit(t):
    six = ipv6_available()
    opts = {"max_clients_per_ip": 3, "metrics_listen": "127.0.0.1:0"}
    with Server(plugins=["echo"], server=opts, tcp6=six) as srv:
        url = metrics_url(srv)
        held = [srv.client("tcp", name="tcp%d" % i) for i in range(3)]
        c = srv.client("tcp", handshake=False, name="fourth")
        f, closed = refused(c)
        t.ok(isinstance(f, acproto.Frame) and f.type == "error" and
             f.header.get("error") == "too_many_connections" and
             f.content.startswith(b"too_many_connections: "),
             "4th connection from 127.0.0.1 gets error too_many_connections", repr(f))
        t.ok(closed, "and is closed")
        c.close()
        t.ok(srv.wait_log(r"too many connections from 127\.0\.0\.1 "
                          r"\(max_clients_per_ip 3\): refusing 127\.0\.0\.1:\d+") is not None,
             "the refusal is logged with the address and the limit", srv.log()[-2000:])
        unix = [srv.client("unix", name="unix%d" % i) for i in range(4)]
        t.ok(all(u.sync() == [] for u in unix), "unix sockets are exempt: 4 more served")
        if six:
            c6 = srv.client("tcp6")
            t.eq(c6.sync(), [], "::1 is another address: served")
            c6.close()
        else:
            t.skip("::1 is another address", "no IPv6 on loopback")
        t.ok(all(h.sync() == [] for h in held), "the 3 held connections are still served")

        # a connect flood from one address: refused, and one log line
        before = len(re.findall("too many connections from", srv.log()))
        n = 50
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
            socks.append(s)
        closed = 0
        for s in socks:
            try:
                s.settimeout(3)
                while s.recv(65536):
                    pass
                closed += 1
            except OSError:
                closed += 1
            s.close()
        t.eq(closed, n, "a flood of %d more connects: every one closed" % n)
        lines = len(re.findall("too many connections from", srv.log())) - before
        t.ok(lines <= 1, "the flood adds at most one log line (rate-limited)",
             "%d lines" % lines)
        t.ok("closed reason=per-ip-limit" not in srv.log(),
             "no per-connection close line at info level")
        m = scrape(url)
        t.eq(m.get("asyncchat_frame_errors_total", error="too_many_connections"),
             float(n + 1), "frame_errors_total{error=too_many_connections} counts them")
        t.eq(m.get("asyncchat_disconnects_total", reason="per-ip-limit"),
             float(n + 1), "disconnects_total{reason=per-ip-limit} counts them")

        # closing one frees a slot (the close is noticed asynchronously)
        held.pop().close()
        deadline = time.monotonic() + 3
        ok = False
        while time.monotonic() < deadline and not ok:
            c = srv.client("tcp", handshake=False, name="again")
            try:
                ok = c.recv_frame(3).type == "session_init"
            except (acproto.Closed, acproto.Timeout):
                pass
            c.close()
            if not ok:
                time.sleep(0.05)
        t.ok(ok, "closing one frees a slot for a new connection")
        for x in held + unix:
            x.close()


def case_per_ip_reload(t):
    with Server(plugins=["echo"], server={"max_clients_per_ip": 0}) as srv:
        held = [srv.client("tcp") for i in range(4)]
        t.ok(all(h.sync() == [] for h in held), "max_clients_per_ip = 0: no limit")
        off = len(srv.log())
        srv.server_opts["max_clients_per_ip"] = 2
        srv.write_config()
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("configuration reloaded", start=off) is not None,
             "SIGHUP with max_clients_per_ip = 2 reloads")
        t.ok(all(h.sync() == [] for h in held), "sessions over the new limit stay")
        c = srv.client("tcp", handshake=False)
        f, closed = refused(c)
        t.ok(isinstance(f, acproto.Frame) and f.header.get("error") == "too_many_connections",
             "a new connection is refused under the new limit", repr(f))
        c.close()
        for h in held[:3]:
            h.close()
        time.sleep(0.3)
        c = srv.client("tcp")
        t.eq(c.sync(), [], "under the limit again: served")
        c.close()
        held[3].close()


def burst(c, frames):
    c.send_raw(b"".join(frames))


def case_message_rate(t):
    opts = {"max_message_rate": 20, "rate_burst": 1, "rate_limit_disconnect": 1000}
    with Server(plugins=["echo"], server=opts) as srv:
        c = srv.client("tcp")
        time.sleep(1.1)         # the handshake's frames are paid back
        n = 40
        burst(c, [c.frame("message", b"m%d" % i) for i in range(n)])
        got = frames_for(c, 1.0)
        echoes = [f.content for f in got if f.type == "message"]
        errs = errors_of(got, "rate_limited")
        t.ok(19 <= len(echoes) < 30, "a burst of %d over a bucket of 20: about 20 pass" % n,
             "%d passed" % len(echoes))
        nums = [int(e[1:]) for e in echoes]
        t.ok(nums[:19] == list(range(19)) and nums == sorted(nums),
             "the first ones pass, in order", repr(nums))
        t.eq(len(errs), 1, "one rate_limited error for all the drops (1 a second)",
             repr(got[:5]))
        t.ok(errs and errs[0].content.startswith(b"rate_limited: over max_message_rate (20"),
             "the error names max_message_rate and the rate", repr(errs[:1]))
        t.ok(srv.wait_log(r"session %s: over max_message_rate, dropping frames"
                          % c.session_id) is not None, "the first drop is logged")
        time.sleep(1.1)
        for i in range(5):
            c.send_message(b"ok%d" % i)
            time.sleep(0.06)
        t.eq([f.content for f in c.sync()], [b"ok%d" % i for i in range(5)],
             "compliant traffic afterwards is delivered, with no error")
        c.close()


def case_sustained(t):
    opts = {"max_message_rate": 20, "rate_burst": 1, "rate_limit_disconnect": 30,
            "metrics_listen": "127.0.0.1:0"}
    with Server(plugins=["broadcast"], server=opts) as srv:
        url = metrics_url(srv)
        talker = srv.client("tcp", name="talker")
        listener = srv.client("unix", name="listener")
        flooder = srv.client("tcp", name="flooder")
        got = []
        stop = threading.Event()

        def listen():
            while not stop.is_set():
                try:
                    f = listener.recv_frame(0.2)
                except acproto.Timeout:
                    continue
                except acproto.Closed:
                    return
                if f.type == "message" and f.content.startswith(b"talk"):
                    got.append(f.content)

        th = threading.Thread(target=listen)
        th.start()
        sent = []
        try:
            for i in range(10):
                if i == 3:
                    burst(flooder, [flooder.frame("message", b"flood%d" % j)
                                    for j in range(500)])
                sent.append(b"talk%d" % i)
                talker.send_message(sent[-1])
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            stop.set()
            th.join(5)
        t.eq(got, sent, "a well-behaved client's messages all arrive during the flood")
        frames = frames_for(flooder, 3)
        disc = [f for f in frames if f.type == "disconnect"]
        t.ok(disc and disc[0].json().get("reason") == "Rate limit exceeded",
             "the flooder gets disconnect 'Rate limit exceeded'", repr(frames[-3:]))
        t.ok(flooder.eof, "and is closed")
        t.ok(len(errors_of(frames, "rate_limited")) <= 1,
             "its error replies are bounded (at most 1)")
        t.ok(srv.wait_log(r"session %s closed reason=rate-limit"
                          % re.escape(flooder.session_id)) is not None,
             "log: closed reason=rate-limit", srv.log()[-2000:])
        m = scrape(url)
        t.eq(m.get("asyncchat_disconnects_total", reason="rate-limit"), 1.0,
             "disconnects_total{reason=rate-limit} is 1")
        t.eq(m.get("asyncchat_frame_errors_total", error="rate_limited"), 30.0,
             "frame_errors_total{error=rate_limited} counts the 30 dropped frames")
        t.ok(all(f.type == "message" for f in talker.sync()), "the talker is still served")
        talker.close()
        listener.close()
        flooder.close()


def case_byte_rate(t):
    opts = {"max_byte_rate": "10K", "max_message_rate": 0, "rate_burst": 1,
            "rate_limit_disconnect": 5}
    with Server(plugins=["echo"], server=opts) as srv:
        c = srv.client("tcp")
        k4 = b"x" * 4096
        burst(c, [c.frame("message", k4) for i in range(4)])
        got = frames_for(c, 0.8)
        echoes = [f for f in got if f.type == "message"]
        errs = errors_of(got, "rate_limited")
        t.eq(len(echoes), 2, "4 x 4 KiB over a 10 KiB bucket: 2 pass")
        t.ok(len(errs) == 1 and b"max_byte_rate (10240" in errs[0].content,
             "one rate_limited error naming max_byte_rate", repr(errs))
        time.sleep(1.1)
        big = b"y" * 30000
        c.send_message(big)
        f = c.recv_frame(3)
        t.ok(f.type == "message" and f.content == big,
             "a frame bigger than the whole burst passes when the bucket is full")
        c.send_message(b"small")
        got = frames_for(c, 0.8)
        t.ok(not [f for f in got if f.type == "message"],
             "and leaves a debt: the next frame is dropped", repr(got))
        time.sleep(3.2)
        c.send_message(b"paid")
        t.eq([f.content for f in c.sync()], [b"paid"], "once the debt is paid, frames pass")
        # sustained: rate_limit_disconnect = 5 drops
        burst(c, [c.frame("message", k4) for i in range(20)])
        frames = frames_for(c, 3)
        t.ok(c.eof and any(f.type == "disconnect" for f in frames),
             "a sustained byte flood is disconnected",
             lambda: "eof %s, frames %r" % (c.eof, [(f.type, f.content[:60]) for f in frames]))
        t.ok(srv.wait_log(r"closed reason=rate-limit") is not None, "reason rate-limit")
        c.close()


def case_reload_rates(t):
    with Server(plugins=["echo"], server={"max_message_rate": 0}) as srv:
        c = srv.client("unix")
        n = 600
        burst(c, [c.frame("message", b"%d" % i) for i in range(n)])
        echoes = 0
        deadline = time.monotonic() + 5
        while echoes < n and time.monotonic() < deadline:
            if c.recv_frame(3).type == "message":
                echoes += 1
        t.eq(echoes, n, "max_message_rate = 0: a burst of %d all pass" % n)
        off = len(srv.log())
        srv.server_opts.update({"max_message_rate": 10, "rate_burst": 1,
                                "rate_limit_disconnect": 0})
        srv.write_config()
        srv.signal(signal.SIGHUP)
        t.ok(srv.wait_log("configuration reloaded", start=off) is not None, "reloaded")
        burst(c, [c.frame("message", b"r%d" % i) for i in range(100)])
        got = frames_for(c, 1.0)
        echoes = [f for f in got if f.type == "message"]
        t.ok(8 <= len(echoes) <= 14, "the existing session now gets about 10 through",
             "%d passed" % len(echoes))
        t.eq(len(errors_of(got, "rate_limited")), 1, "and one rate_limited error")
        t.ok(not c.eof, "rate_limit_disconnect = 0: never disconnected")
        c.close()


def case_defaults(t):
    with Server(plugins=["echo"]) as srv:
        c = srv.client("tcp")
        n = 300
        burst(c, [c.frame("message", b"d%d" % i) for i in range(n)])
        got = []
        deadline = time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            got.append(c.recv_frame(3))
        t.eq([f.content for f in got], [b"d%d" % i for i in range(n)],
             "default limits: a burst of %d messages all pass" % n)
        t.eq(c.sync(), [], "and no error follows")
        c.close()
        held = [srv.client("tcp") for i in range(20)]
        t.ok(all(h.sync() == [] for h in held), "default: 20 connections from one address")
        for h in held:
            h.close()
    srv = Server(plugins=["echo"], start=False)
    rc, out = srv.check()
    t.eq(rc, 0, "the defaults pass -t", out)


def case_config_errors(t):
    bad = [("max_clients_per_ip", "-1"), ("max_clients_per_ip", "1000001"),
           ("max_message_rate", "fast"), ("max_message_rate", "1000001"),
           ("max_byte_rate", "2G"), ("max_byte_rate", "10X"),
           ("rate_burst", "0"), ("rate_burst", "61"),
           ("rate_limit_disconnect", "many")]
    for key, value in bad:
        srv = Server(plugins=["echo"], start=False, server={key: value})
        rc, out = srv.check()
        t.ok(rc == 1 and re.search(re.escape(srv.confpath) +
                                   r":\d+: \[server\] %s: " % key, out),
             "%s = %s: -t exits 1 with FILE:LINE: [server] %s" % (key, value, key), out)
    good = {"max_clients_per_ip": 0, "max_message_rate": 0, "max_byte_rate": 0,
            "rate_burst": 0.5, "rate_limit_disconnect": 0}
    srv = Server(plugins=["echo"], start=False, server=good)
    rc, out = srv.check()
    t.eq(rc, 0, "0 (off) for each limit, rate_burst = 0.5: accepted", out)
    srv = Server(plugins=["echo"], start=False,
                 server={"max_byte_rate": "1G", "rate_burst": 60,
                         "max_message_rate": 1000000})
    rc, out = srv.check()
    t.eq(rc, 0, "the largest values: accepted", out)


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def sanitized():
    """True if the server is built with a sanitizer (RSS means nothing)."""
    try:
        with open(os.path.join(os.path.dirname(SERVER), ".libs",
                               "asyncchatd"), "rb") as f:
            data = f.read()
    except OSError:
        with open(SERVER, "rb") as f:
            data = f.read()
    return b"AddressSanitizer" in data or b"__asan_init" in data


def case_input_bound(t):
    """A session's input buffer holds at most one largest frame: a sender
    that floods faster than the server reads, or trickles a huge frame,
    cannot make it hold more (libevent stops reading at the high mark)."""
    frame_max = 64 + 1024 + 1048576
    opts = {"max_header_size": 1024, "max_content_size": "1M",
            "max_message_rate": 0, "max_byte_rate": 0,
            "handshake_timeout": 60, "heartbeat_timeout": 60}
    with Server(plugins=[], server=opts) as srv:
        pid = srv.pid
        c = srv.client("tcp")
        base = rss_kib(pid)
        # a flood of whole 1 MiB frames, 64 MiB in all, never reading
        frame = c.frame("message", b"z" * 1048576)
        t0 = time.monotonic()
        for i in range(64):
            c.send_raw(frame)
        t.eq(c.sync(10), [], "64 MiB of frames flooded: all handled")
        peak = rss_kib(pid, "VmHWM")
        t.diag("flood: %.1f s; server RSS %d KiB before, peak %d KiB (+%d KiB; "
               "frame_max %d KiB)" % (time.monotonic() - t0, base, peak, peak - base,
                                      frame_max // 1024))
        if not sanitized():
            t.ok(peak - base < 4 * frame_max // 1024 + 2048,
                 "peak RSS grew by less than 4 largest frames + 2 MiB",
                 "+%d KiB" % (peak - base))
        else:
            t.skip("peak RSS bound", "sanitizer build")
        c.close()

        # slowloris: 16 sessions each hold one frame short of its end
        # (acknowledged ones: before session_ack only small frames pass)
        n = 16
        held = []
        before = rss_kib(pid)
        for i in range(n):
            c = srv.client("tcp")
            header = acproto.header_bytes({"type": "message",
                                           "content_type": acproto.OCTETS,
                                           "session_id": c.session_id})
            s = c.sock
            s.sendall(acproto.fixed_header(header, 1048576) + header + b"q" * (1048576 - 1))
            held.append(s)
        time.sleep(0.5)
        after = rss_kib(pid)
        per = (after - before) * 1024 / n
        t.diag("slowloris: %d connections each one byte short of a %d-byte frame: "
               "+%d KiB RSS, %.0f bytes a connection" % (n, frame_max, after - before, per))
        if not sanitized():
            t.ok(per < 2 * frame_max, "each holds less than 2 largest frames",
                 "%.0f bytes" % per)
        else:
            t.skip("slowloris bound", "sanitizer build")
        for s in held:
            s.close()
        time.sleep(0.3)
        c = srv.client("tcp")
        t.eq(c.sync(), [], "the server is fine afterwards")
        c.close()


def case_event_memory(t):
    """Events a plugin makes for each recipient (chat's join and part,
    some 300 bytes each) and queues to sessions that do not read take
    about what max_memory counts of them. Each used to keep the chain it
    was encoded in, 1 KiB at least: the server's RSS grew by 3.4 times
    what it counted."""
    if sanitized():
        t.skip("event memory bound", "sanitizer build")
        return
    with Server(plugins=["chat"],
                server={"metrics_listen": "127.0.0.1:0",
                        "handshake_timeout": 600,
                        "heartbeat_timeout": 600}) as srv:
        url = metrics_url(srv)
        idle = [connect(srv, "unix", nick="idle%d" % i, rooms=[],
                        sync=False) for i in range(200)]
        mover = connect(srv, nick="mover", rooms=[])
        mover.cmd("/part lobby")
        counted0 = scrape(url).get("asyncchat_memory_buffered_bytes")
        rss0 = rss_kib(srv.pid)
        for i in range(1500):
            mover.say("/join lobby" if i % 2 == 0 else "/part lobby")
            if i % 100 == 99:
                mover.sync(30)
        mover.sync(30)
        counted = int(scrape(url).get("asyncchat_memory_buffered_bytes") -
                      counted0)
        grown = (rss_kib(srv.pid) - rss0) * 1024
        t.diag("200 sessions not reading, 1500 joins and parts: %d MiB "
               "counted, RSS +%d MiB" % (counted >> 20, grown >> 20))
        t.ok(counted > 32 << 20, "the events wait in the server's buffers",
             "%d bytes" % counted)
        t.ok(grown < 1.5 * counted, "and take less than 1.5 times what "
             "max_memory counts of them", "RSS +%d, counted %d" %
             (grown, counted))
        for c in idle:
            c.close()
        mover.close()


if __name__ == "__main__":
    main([case_per_ip_limit, case_per_ip_reload, case_message_rate, case_sustained,
          case_byte_rate, case_reload_rates, case_defaults, case_config_errors,
          case_input_bound, case_event_memory])
