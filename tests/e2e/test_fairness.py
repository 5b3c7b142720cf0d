#!/usr/bin/env python3
"""One session's input does not hold up the others (finding 10 of the
attacker's review of the chat layer): the frames of one read are handled
64 at a time, and the rest waits for the next loop turn, behind the other
sessions' input.

The order the server handles frames in is what a broadcast recipient sees:
with include_sender, every session gets every message in the order the
server took them. The server is stopped (SIGSTOP) while a flooder's
thousands of frames and then another session's one message reach its
sockets, so that both are readable in the same loop turn, the flooder's
first. No timing is asserted: only how many of the flooder's frames the
server handled before the other session's one."""

import os
import signal
import socket
import ssl
import threading
import time

import acproto
from chat import TEXT, ChatClient, connect, error_of, is_event
from harness import Server, main, mkdtemp, test_plugin
from metrics import metrics_url, scrape
from pki import certs
from procs import wait_until

BATCH = 64


def drain(c, stop):
    """Read and drop what c is sent until stop is set or it closes."""
    c.sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not c.sock.recv(1 << 20):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def send_what_fits(sock, data):
    """Send as much of data as the socket takes now; return the rest."""
    sock.setblocking(False)
    off = 0
    try:
        while off < len(data):
            off += sock.send(data[off:off + 65536])
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return data[off:]


def flood_then_one(t, transport, n):
    opts = {"max_message_rate": 0, "max_byte_rate": 0}
    sections = {"broadcast": {"include_sender": "yes"}}
    with Server(plugins=["broadcast"], server=opts, sections=sections) as srv:
        a = srv.client(transport, name="flooder")
        b = srv.client(transport, name="other")
        stop = threading.Event()
        reader = threading.Thread(target=drain, args=(a, stop), daemon=True)
        reader.start()
        flood = b"".join(a.frame("message", b"flood %06d" % i)
                         for i in range(n))
        srv.signal(signal.SIGSTOP)
        try:
            rest = send_what_fits(a.sock, flood)
            b.send_message(b"marker")
        finally:
            srv.signal(signal.SIGCONT)
        sent = len(flood) - len(rest)
        writer = threading.Thread(target=a.sock.sendall, args=(rest,),
                                  daemon=True)
        writer.start()
        before = 0
        t0 = time.monotonic()
        while True:
            f = b.recv_frame(30)
            if f.content == b"marker":
                break
            before += 1
        waited = time.monotonic() - t0
        t.diag("%s: %d bytes of flood in the socket when the server went "
               "on; %d flood frames handled before the other session's "
               "message (%.1f ms after SIGCONT)" % (transport, sent, before,
                                                    waited * 1000))
        t.ok(sent > 20 * BATCH * 100,
             "%s: the flooder had more than 20 batches in the socket" %
             transport, "%d bytes" % sent)
        t.ok(before <= 2 * BATCH,
             "%s: the other session's message is handled after at most "
             "two batches of the flood" % transport,
             "%d flood frames before it" % before)
        got = before
        in_order = True
        while got < n:
            try:
                f = b.recv_frame(30)
            except acproto.Timeout:
                break
            in_order = in_order and f.content == b"flood %06d" % got
            got += 1
        t.eq(got, n, "%s: every frame of the flood is handled, in the end" %
             transport)
        t.ok(in_order, "%s: in the order sent" % transport)
        t.eq(b.sync(10), [], "%s: the other session is served after" %
             transport)
        stop.set()
        writer.join(30)
        reader.join(5)
        a.close()
        b.close()


def case_flood_then_close(t):
    """Everything a peer sends before it closes is handled, frames that
    wait for a later turn included. On TLS the last frame was lost: the
    end of the stream was told (and the session closed) before the bytes
    read with it were in the input."""
    c = certs()
    opts = {"listen": ["tcp://127.0.0.1:0", "tls://127.0.0.1:0",
                       "wss://127.0.0.1:0"],
            "tls_cert": c.srv_crt, "tls_key": c.srv_key,
            "max_message_rate": 0, "max_byte_rate": 0,
            "heartbeat_timeout": 600}
    with Server(plugins=["broadcast"], server=opts, unix=False) as srv:
        m = srv.wait_log(r"listening on tls://127\.0\.0\.1:(\d+)", 5)
        tls_port = int(m.group(1))
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(c.ca_crt)
        b = srv.client("tcp", name="watcher")
        n = 2000
        for transport in ("tcp", "tls", "wss"):
            if transport == "tls":
                a = acproto.Client.tls("127.0.0.1", tls_port, ctx,
                                       "localhost", srv.key)
                a.handshake()
            elif transport == "wss":
                a = acproto.Client.ws("127.0.0.1", srv.wss_port,
                                      key=srv.key, ctx=ctx)
                a.handshake()
            else:
                a = srv.client(transport)
            a.send_raw(b"".join(a.frame("message", b"%s %d" % (
                transport.encode(), i)) for i in range(n)))
            a.close()
            got = 0
            while got < n:
                try:
                    f = b.recv_frame(10)
                except acproto.Timeout:
                    break
                got += f.content.startswith(transport.encode())
            t.eq(got, n, "%s: %d frames in one write, then the end: all "
                 "handled" % (transport, n))
        b.close()


def case_command_budget(t):
    """/nick, /join, /part, /who and /rooms spend a budget of command_rate
    a second, command_burst at once; past it the reply is rate_limited
    and the command does nothing (no event to anyone)."""
    secs = {"chat": {"command_rate": 1, "command_burst": 5}}
    with Server(plugins=["chat"], sections=secs) as srv:
        a = connect(srv, nick="storm")
        b = connect(srv, "unix", nick="watcher")
        n = 40
        a.send_raw(b"".join(a.frame("message", b"/nick storm%d" % i,
                                    content_type=TEXT) for i in range(n)))
        got = [a.wait_for(is_event("reply"), "reply %d" % i)
               for i in range(n)]
        ok = [f for f in got if f.header.get("status") == "ok"]
        limited = [f for f in got if f.header.get("error") == "rate_limited"]
        t.ok(5 <= len(ok) < n, "%d /nick in one write: the burst of 5 "
             "(and what the rate refilled meanwhile) pass" % n,
             "%d ok" % len(ok))
        t.eq(len(ok) + len(limited), n, "the others are answered "
             "rate_limited")
        f = limited[0]
        t.eq((f.header.get("command"), f.header.get("status")),
             ("nick", "error"), "as a reply of command nick, status error")
        t.ok(f.content.startswith(b"! /nick: rate_limited: over 1 of "),
             "its line says the rate", f.content)
        seen = [e for e in b.sync(10) if e.header.get("event") == "nick"]
        t.eq(len(seen), len(ok), "the other member got one nick event per "
             "/nick that passed, none for the refused")
        t.eq(error_of(a.cmd("/msg watcher hi")), None,
             "messages are not charged")
        t.eq(error_of(a.cmd("/join other")), "rate_limited",
             "/join spends the same budget")
        t.eq(error_of(a.cmd("/rooms")), "rate_limited", "so does /rooms")
        a.close()
        b.close()
    secs = {"chat": {"command_rate": 0, "command_burst": 1}}
    with Server(plugins=["chat"], sections=secs) as srv:
        a = connect(srv)
        a.send_raw(b"".join(a.frame("message", b"/nick free%d" % i,
                                    content_type=TEXT) for i in range(n)))
        got = [a.wait_for(is_event("reply"), "reply %d" % i)
               for i in range(n)]
        t.eq(sum(1 for f in got if f.header.get("status") == "ok"), n,
             "command_rate = 0: no budget")
    for key, value in (("command_rate", "-1"), ("command_burst", "0"),
                       ("command_rate", "fast")):
        srv = Server(plugins=["chat"], sections={"chat": {key: value}},
                     start=False)
        status, out = srv.start_fails()
        t.ok(status != 0 and key in out, "%s = %s is refused, named" %
             (key, value), out[-300:])


def case_write_not_behind_replays(t):
    """A message's store does not wait for replays (finding 11). The only
    worker is held (the jobs test module) while a session asks for a
    replay of 1000 messages and then sends a message in another room, in
    one write: the replay and the store wait in the queue, the replay
    first. Let go, the worker takes the store first, so with sync = full
    (delivered once stored) the message comes back before the replay's
    first frame. Before, the replay was serial with the writes, and ran
    first."""
    d = mkdtemp()
    gates = mkdtemp("acjobs-")
    hist = {"path": os.path.join(d, "h.db"), "sync": "full",
            "max_replay": 1000}
    with Server(plugins=[test_plugin("jobs"), "chat", "history"],
                server={"worker_threads": 1},
                sections={"history": hist, "chat": {"command_rate": 0},
                          "jobs": {"gate_dir": gates}}) as srv:
        w = connect(srv, nick="writer", rooms=[{"room": "big"}])
        body = b"x" * 7000
        n = 1000
        w.send_raw(b"".join(w.frame("message", body + b" %d" % i,
                                    content_type=TEXT,
                                    extra={"room": "big"})
                            for i in range(n)))
        last = w.wait_for(lambda f: f.header.get("from") == "writer" and
                          f.content.endswith(b" %d" % (n - 1)),
                          "the last of %d messages stored" % n, timeout=120)
        t.eq(last.header.get("seq"), n, "%d messages of 7 KB in #big" % n)
        b = connect(srv, nick="b", rooms=[{"room": "other"}])
        blocker = srv.client("tcp")
        blocker.send_message(b"free hold block", TEXT)
        t.ok(wait_until(lambda: os.path.exists(
            os.path.join(gates, "hold.running")), 30),
            "the only worker is held")
        b.send_raw(b.frame("message", b"/join big 0", content_type=TEXT) +
                   b.frame("message", b"marker", content_type=TEXT,
                           extra={"room": "other"}))
        order = []
        f = b.wait_for(is_event("reply", command="join"), "b's /join reply")
        t.eq(f.header.get("status"), "ok", "b joins #big: its replay and "
             "then the store of its message wait for the worker")
        with open(os.path.join(gates, "hold"), "w"):
            pass
        while True:
            f = b.recv_frame(120)
            if f.header.get("room") == "big" and "seq" in f.header and \
                    f.header.get("event") is None:
                order.append("replay")
                break
            if f.content == b"marker":
                order.append("marker")
        t.eq(order, ["marker", "replay"], "the worker let go, the message "
             "is stored (and delivered) before the replay asked for before "
             "it is read")
        end = b.wait_for(is_event("history-end", room="big"),
                         "b's history-end", timeout=120)
        t.eq(end.header.get("replayed"), n,
             "the replay then has every message", end.header)
        for c in (w, b, blocker):
            c.close()


def case_rooms_answer_bounded(t):
    """/rooms lists at most max_rooms_listed rooms (default 200), the most
    populous first, and says how many there are (finding 9)."""
    secs = {"chat": {"max_rooms": 1000, "command_rate": 0}}
    with Server(plugins=["chat"], sections=secs) as srv:
        a = connect(srv, nick="many")
        b = connect(srv, "unix", nick="other")
        rooms = ["r%03d" % i for i in range(300)] + ["pop"]
        a.send_raw(b"".join(a.frame("message", b"/join " + r.encode(),
                                    content_type=TEXT) for r in rooms))
        for r in rooms:
            a.wait_for(is_event("reply", command="join"), "join " + r)
        t.eq(error_of(b.cmd("/join pop")), None, "pop has two members")
        got = [f for f in b.cmd("/rooms", timeout=30)
               if f.header.get("event") == "rooms"]
        listed = [(r["room"], r["members"]) for f in got
                  for r in f.header["rooms"]]
        size = sum(len(f.raw) for f in got)
        t.diag("/rooms of 302 rooms: %d events, %d bytes" % (len(got), size))
        t.eq(len(listed), 200, "302 rooms: 200 listed")
        t.eq(listed[:2], [("lobby", 2), ("pop", 2)],
             "the most populous first")
        last = got[-1].header
        t.eq((last.get("total"), last.get("truncated"), last.get("more")),
             (302, True, None), "the last event says how many in all, "
             "truncated (and no more events follow)")
        t.ok(all(f.header.get("more") is True for f in got[:-1]),
             "events before it say more")
        t.ok(b"302 rooms, the 200 largest" in got[0].content,
             "the line says so", got[0].content[:80])
        a.close()
        b.close()


def case_shedding_quits(t):
    """max_memory closes the sessions that do not read; their quit events
    go only to the members that keep up (finding 12). Before, each closed
    session's quit was queued to every member left, the others that do
    not read too: frames in the square of the sessions closed, that
    filled the memory being freed."""
    opts = {"max_memory": "8M", "max_output_buffer": "512M",
            "max_content_size": "1M", "max_header_size": 4096,
            "max_message_rate": 0, "max_byte_rate": 0,
            "metrics_listen": "127.0.0.1:0"}
    secs = {"chat": {"default_room": "", "command_rate": 0}}
    k = 40
    with Server(plugins=["chat"], server=opts, sections=secs) as srv:
        url = metrics_url(srv)
        sinks = []
        for i in range(k):
            c = ChatClient.connect(srv.addr("unix" if i % 2 else "tcp"),
                                   key=srv.key, rcvbuf=4096)
            sinks.append(connect(srv, nick="sink%d" % i,
                                 rooms=[{"room": "big"}], sock_client=c))
        reader = connect(srv, "unix", nick="reader", rooms=[{"room": "big"}])
        sender = connect(srv, nick="sender", rooms=[{"room": "big"}])
        stop = threading.Event()
        drainer = threading.Thread(target=drain, args=(sender, stop),
                                   daemon=True)
        drainer.start()
        before = scrape(url)
        frame = sender.frame("message", b"m" * 700, content_type=TEXT)
        n = 4000
        got = 0
        for sent in range(200, n + 1, 200):
            sender.send_raw(frame * 200)
            while got < sent:            # the reader keeps up
                f = reader.recv_frame(10)
                got += f.content == b"m" * 700
        t.ok(srv.wait_log(r"closed \d+ sessions? for max_memory",
                          timeout=10) is not None,
             "sessions that do not read are closed for max_memory")
        t.eq(error_of(reader.cmd("/who big", timeout=10)), None,
             "the reader is still served")
        after = scrape(url)
        closed = after.get("asyncchat_disconnects_total",
                           reason="memory-limit")
        quits = after.get("chat_events_total", plugin="chat") - \
            before.get("chat_events_total", plugin="chat") - 2  # /who
        t.diag("%d of %d sessions closed for max_memory, %d quit events "
               "queued" % (closed, k + 2, quits))
        t.ok(closed >= 2, "several closed (%d of %d)" % (closed, k))
        # Each closed session's quit goes at most to the members never
        # closed: the reader, the sender and the sinks whose output the
        # kernel still took. Before, to every member left at the time.
        bound = closed * (k + 2 - closed)
        t.ok(quits <= bound, "their quit events went only to the members "
             "that had written all they were sent (at most %d)" % bound,
             "%d quit events for %d closed" % (quits, closed))
        stop.set()
        drainer.join(5)
        for c in sinks + [reader, sender]:
            c.close()


def case_slow_http_head(t):
    """A request head sent a byte at a time is looked at once, not once
    a read (finding 13): the server counts the bytes it scans."""
    with Server(plugins=["echo"], server={"metrics_listen": "127.0.0.1:0"},
                tcp=False, unix=False) as srv:
        url = metrics_url(srv)
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for i in range(40):
            head += b"X-Pad-%02d: %s\r\n" % (i, b"a" * 120)
        head += b"\r\n"
        before = scrape(url).get("asyncchat_http_head_scanned_bytes_total")
        s = socket.create_connection(("127.0.0.1", srv.ws_port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(head)):
            s.sendall(head[i:i + 1])
        answer = s.recv(4096)
        s.close()
        t.ok(answer.startswith(b"HTTP/1.1 "), "a %d-byte head sent a byte "
             "at a time is answered" % len(head), answer[:40])
        after = scrape(url).get("asyncchat_http_head_scanned_bytes_total")
        t.ok(before is not None and after is not None,
             "the scan is counted (asyncchat_http_head_scanned_bytes_total)")
        scanned = (after or 0) - (before or 0)
        t.diag("%d bytes scanned for a head of %d" % (scanned, len(head)))
        t.ok(before is not None and scanned <= 3 * len(head),
             "each byte is looked at a few times at most, not once a read",
             "%d bytes scanned" % scanned)


def case_flood_does_not_starve(t):
    for transport in ("tcp", "unix"):
        flood_then_one(t, transport, 6000)


if __name__ == "__main__":
    main([case_flood_does_not_starve, case_flood_then_close,
          case_command_budget,
          case_write_not_behind_replays, case_slow_http_head,
          case_rooms_answer_bounded, case_shedding_quits])
