#!/usr/bin/env python3
"""The WebSocket transport of ws:// listeners (RFC 6455, WEB.md): the
protocol's stream in binary messages, however the client cuts it; each
server frame one message; ping, pong and close answered; and every kind
of bad WebSocket input from a hostile client, each closed with the RFC's
code while a TCP session and another WebSocket session beside it carry on.

(The protocol's own cases run over ws too: tests/e2e/test_session.py,
test_framing.py, test_invalid.py, test_limits.py and test_hostile.py loop
over harness.transports(), which includes "ws".)"""

import re
import socket
import struct
import time

import acproto
import acws
from acws import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT
from acws import close_payload, frame
from harness import Server, main
from metrics import metrics_url, scrape

# One largest protocol frame with the default limits: a WebSocket frame's
# payload may be no larger (1009 past it).
FRAME_MAX = 64 + 65536 + 10 * 1024 * 1024


def ws_client(srv, **kw):
    """A handshaken protocol client over a WebSocket."""
    return srv.client("ws", **kw)


def closed_with(c, timeout=3.0):
    """The frames the server sends a WebSocket client until it closes the
    TCP connection: (protocol frames, WebSocket close code or None,
    control frames seen)."""
    ws = c.sock
    frames = ws.frames(timeout)
    dec = acproto.Decoder(c.key)
    code, controls = None, []
    data = bytes(ws.data)
    for op, payload in frames:
        if op == OP_BINARY:
            data += payload
        elif op == OP_CLOSE:
            if code is None and len(payload) >= 2:
                code = struct.unpack("!H", payload[:2])[0]
            controls.append((op, payload))
        else:
            controls.append((op, payload))
    if ws.closed:
        code = ws.close_code
    dec.feed(data)
    return [x for x in dec], code, controls


def check_others(t, srv, label, others):
    """The sessions beside the hostile one are served as before."""
    for c in others:
        sent = c.send_message(b"still here after " + label.encode())
        f = c.recv_frame(3)
        t.eq(f.raw, sent, "%s: the %s session beside it is served"
             % (label, c.name))


# (label, the bytes the hostile client sends after its handshake, the
# close code RFC 6455 says it gets)
def hostile_inputs():
    msg = acproto.encode("message", b"x", None)
    return [
        ("a text message", frame(OP_TEXT, b"hello"), 1003),
        ("a text message of the protocol's bytes", frame(OP_TEXT, msg),
         1003),
        ("an unmasked frame", frame(OP_BINARY, msg, mask=False), 1002),
        ("RSV1 set (no extension agreed)", frame(OP_BINARY, msg, rsv=4),
         1002),
        ("RSV2 set", frame(OP_BINARY, msg, rsv=2), 1002),
        ("RSV3 set", frame(OP_BINARY, msg, rsv=1), 1002),
        ("RSV1 on a ping", frame(OP_PING, b"p", rsv=4), 1002),
    ] + [
        ("opcode %d" % op, frame(op, b"abc"), 1002)
        for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)
    ] + [
        ("a ping of 126 bytes", frame(OP_PING, b"p" * 126), 1002),
        ("a close of 126 bytes",
         frame(OP_CLOSE, close_payload(1000, b"r" * 124)), 1002),
        ("a pong of 200 bytes", frame(OP_PONG, b"q" * 200), 1002),
        ("a fragmented ping", frame(OP_PING, b"p", fin=False) +
         frame(OP_CONT, b"q"), 1002),
        ("a fragmented close", frame(OP_CLOSE, b"\x03", fin=False), 1002),
        ("a continuation with no message",
         frame(OP_CONT, msg), 1002),
        ("a binary message inside a fragmented one",
         frame(OP_BINARY, msg[:10], fin=False) +
         frame(OP_BINARY, msg[10:]), 1002),
        ("a text message inside a fragmented one",
         frame(OP_BINARY, msg[:10], fin=False) +
         frame(OP_TEXT, b"t"), 1002),
        ("a 16-bit length for 5 bytes (not the shortest form)",
         frame(OP_BINARY, b"12345", length=16), 1002),
        ("a 64-bit length for 200 bytes (not the shortest form)",
         frame(OP_BINARY, b"z" * 200, length=64), 1002),
        ("a 64-bit length with its top bit set",
         bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) +
         b"\0\0\0\0" + b"abcd", 1002),
        ("a frame one byte over one largest protocol frame",
         bytes([0x82, 0xFF]) + struct.pack("!Q", FRAME_MAX + 1) +
         b"\1\2\3\4" + b"abcdefgh", 1009),
        ("a frame of 2^62 bytes",
         bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 62) +
         b"\1\2\3\4" + b"abcdefgh", 1009),
        ("a close of one byte", frame(OP_CLOSE, b"\x03"), 1002),
        ("close code 999", frame(OP_CLOSE, close_payload(999)), 1002),
        ("close code 1005 (never sent)",
         frame(OP_CLOSE, close_payload(1005)), 1002),
        ("close code 1006 (never sent)",
         frame(OP_CLOSE, close_payload(1006)), 1002),
        ("close code 2000 (reserved)",
         frame(OP_CLOSE, close_payload(2000)), 1002),
        ("close code 5000", frame(OP_CLOSE, close_payload(5000)), 1002),
        ("a close reason that is not UTF-8",
         frame(OP_CLOSE, close_payload(1000, b"\xff\xfe")), 1007),
    ]


def case_hostile_frames(t):
    """Each bad input closes only its own session, with the RFC's code,
    after the protocol frames that came before it were handled."""
    with Server(plugins=["echo"]) as srv:
        tcp = srv.client("tcp", name="tcp")
        other = ws_client(srv, name="ws")
        for label, data, code in hostile_inputs():
            c = ws_client(srv, name="hostile")
            before = c.frame("message", b"before: " + label.encode())
            c.sock.sendall(before)
            c.sock.send_frame(data)
            try:
                frames, got, _ = closed_with(c)
            except acws.WsClosed as e:
                t.ok(False, "%s: the server closes the connection" % label,
                     str(e))
                c.close()
                continue
            t.eq(got, code, "%s: closed with %d" % (label, code))
            t.eq([f.raw for f in frames], [before],
                 "%s: the message before it was echoed, nothing after"
                 % label, repr(frames))
            c.close()
        check_others(t, srv, "hostile frames", [tcp, other])
        m = srv.wait_log(r"websocket: a text message \(the protocol travels "
                         r"in binary ones\): closing with 1003 peer=127\.0\.0"
                         r"\.1:\d+", timeout=2)
        t.ok(m is not None, "the log says what was wrong, with the code and "
             "the peer", srv.log()[-2000:])
        tcp.close()
        other.close()
        t.ok(srv.poll() is None, "server still running")


def case_hostile_before_ack(t):
    """Bad WebSocket input before the protocol's handshake: the same."""
    with Server(plugins=["echo"]) as srv:
        for label, data, code in hostile_inputs()[:6]:
            c = srv.client("ws", handshake=False)
            c.recv_type("session_init")
            c.sock.send_frame(data)
            frames, got, _ = closed_with(c)
            t.eq(got, code, "before session_ack, %s: closed with %d"
                 % (label, code))
            c.close()
        with srv.client("ws") as c:
            t.eq(c.sync(), [], "a new WebSocket session is served")


def case_stream_in_pieces(t):
    """The protocol's bytes are a stream across binary messages: a frame
    in many messages, several frames in one, a message in fragments, a
    ping between fragments, empty messages."""
    with Server(plugins=["echo"]) as srv:
        c = ws_client(srv)
        ws = c.sock
        a = c.frame("message", b"A" * 5000)
        b = c.frame("message", b"B" * 10)
        d = c.frame("message", b"D" * 70000)
        # one frame, one byte per message
        for i in range(len(b)):
            ws.sendall(b[i:i + 1])
        t.eq(c.recv_frame().raw, b, "a frame sent a byte per message")
        # three frames in one message
        ws.sendall(a + b + d)
        t.eq([c.recv_frame().raw for _ in range(3)], [a, b, d],
             "three frames in one message, in order")
        # one message in fragments, a ping and empty frames in between
        stream = a + d
        cuts = [0, 1, 63, 64, 65, 4000, 5100, 20000, len(stream)]
        parts = [stream[x:y] for x, y in zip(cuts, cuts[1:])]
        raw = frame(OP_BINARY, parts[0], fin=False)
        for i, p in enumerate(parts[1:], 1):
            if i == 3:
                raw += frame(OP_PING, b"mid-message")
            if i == 4:
                raw += frame(OP_CONT, b"", fin=False)
            raw += frame(OP_CONT, p, fin=(i == len(parts) - 1))
        raw += frame(OP_BINARY, b"")        # an empty message
        ws.send_frame(raw)
        t.eq([c.recv_frame().raw for _ in range(2)], [a, d],
             "a message in %d fragments with a ping and an empty "
             "continuation inside" % len(parts))
        t.eq(ws.pings, [b"mid-message"], "the ping between fragments got "
             "its pong, with its payload")
        # fragments of 16-bit and 64-bit lengths, in the shortest form
        ws.send_frame(frame(OP_BINARY, d[:300], fin=False) +
                      frame(OP_CONT, d[300:]))
        t.eq(c.recv_frame().raw, d, "fragments of 300 and 69k bytes")
        t.eq(c.sync(), [], "nothing else")
        c.close()


def case_one_message_per_frame(t):
    """Each frame the server sends is one binary message, whole."""
    with Server(plugins=["broadcast"],
                sections={"broadcast": {"include_sender": "yes"}}) as srv:
        r = ws_client(srv, name="reader")
        s = srv.client("tcp", name="sender")
        sizes = [1, 100, 1000, 70000, 200000]
        sent = [s.send_message(b"m" * n) for n in sizes]
        for raw in sent:
            t.eq(s.recv_frame().raw, raw, "the sender gets its own")
        ws = r.sock
        ws.sock.settimeout(5)
        got = []
        while len(got) < len(sizes):
            f = ws.parser.next()
            if f is None:
                ws.parser.feed(ws.sock.recv(65536))
                continue
            got.append(f)
        t.eq([(fin, rsv, op) for fin, rsv, op, _, _ in got],
             [(True, 0, OP_BINARY)] * len(sizes),
             "final, unfragmented binary messages, no reserved bits")
        t.eq([p for _, _, _, _, p in got], sent,
             "each message is exactly one frame")
        t.eq(any(m for _, _, _, m, _ in got), False,
             "the server masks nothing")
        r.close()
        s.close()


def case_ping_pong_close(t):
    """Ping is answered with a pong of the same payload, an unasked pong
    is ignored, and a close is answered with a close of the same code
    after the frames sent before it."""
    with Server(plugins=["echo"]) as srv:
        c = ws_client(srv)
        ws = c.sock
        ws.send_frame(frame(OP_PING, b"") + frame(OP_PING, b"x" * 125))
        ws.send_frame(frame(OP_PONG, b"unasked"))
        t.eq(c.sync(), [], "pings and a pong: no protocol frame")
        t.eq(ws.pings, [b"", b"x" * 125], "two pongs, payloads echoed")
        sent = c.frame("message", b"last words")
        ws.sendall(sent)
        ws.send_frame(frame(OP_CLOSE, close_payload(1001, b"going")))
        frames, code, _ = closed_with(c)
        t.eq([f.raw for f in frames], [sent],
             "the message sent before the close is echoed")
        t.eq(code, 1001, "the close is answered with its code")
        c.close()

        c = ws_client(srv)
        c.sock.send_frame(frame(OP_CLOSE, b""))
        frames, code, _ = closed_with(c)
        t.eq(code, 1000, "an empty close is answered with 1000")
        c.close()

        c = ws_client(srv)
        c.sock.send_frame(frame(OP_CLOSE, close_payload(4000, b"app")))
        frames, code, _ = closed_with(c)
        t.eq(code, 4000, "a private-use code (4000) is echoed")
        c.close()

        # a close in the middle of a fragmented message ends the session
        c = ws_client(srv)
        m = c.frame("message", b"half")
        c.sock.send_frame(frame(OP_BINARY, m[:20], fin=False) +
                          frame(OP_CLOSE, close_payload(1000)))
        frames, code, _ = closed_with(c)
        t.eq((frames, code), ([], 1000), "a close inside a fragmented "
             "message: answered 1000, the half frame dropped")
        c.close()
        m = srv.wait_log(r"closed reason=eof", timeout=2)
        t.ok(m is not None, "a client's close is an EOF to the session")


def case_server_closes(t):
    """The server's own closes end with a close frame: 1000 after a
    protocol error (the error frame first), 1001 when it shuts down."""
    with Server(plugins=["echo"], server={"handshake_timeout": 0.5}) as srv:
        c = srv.client("ws", handshake=False)
        frames, code, _ = closed_with(c, 5)
        t.eq([f.type for f in frames], ["session_init", "disconnect"],
             "handshake timeout: session_init, then disconnect")
        t.eq(code, 1000, "then a close frame 1000")
        c.close()

        c = ws_client(srv)
        c.sock.sendall(b"GARBAGE!" * 8)        # bad magic: unframeable
        frames, code, _ = closed_with(c)
        t.eq([(f.type, f.header.get("error")) for f in frames],
             [("error", "bad_magic")], "a protocol error is answered")
        t.eq(code, 1000, "then a close frame 1000")
        c.close()

        c = ws_client(srv)
        srv.stop()
        frames, code, _ = closed_with(c)
        t.eq([f.type for f in frames], ["disconnect"],
             "at shutdown, a disconnect frame")
        t.eq(code, 1001, "then a close frame 1001 (going away)")
        c.close()


def case_cut_connections(t):
    """A WebSocket cut anywhere (in its upgrade, a frame header, a mask,
    a payload) costs nothing but itself."""
    with Server(plugins=["echo"]) as srv:
        tcp = srv.client("tcp", name="tcp")
        msg = frame(OP_BINARY, b"x" * 300)
        for cut in (1, 2, 3, 4, 8, 9, 100):
            c = ws_client(srv)
            c.sock.send_frame(msg[:cut])
            c.close()
        for cut in (10, 30, 60):
            s = socket.create_connection(("127.0.0.1", srv.ws_port))
            s.sendall(acws.request_head("127.0.0.1:%d" % srv.ws_port)[:cut])
            s.close()
        check_others(t, srv, "cut connections", [tcp])
        with ws_client(srv) as c:
            t.eq(c.sync(), [], "a new WebSocket session is served")
        tcp.close()


def case_limits_apply(t):
    """A WebSocket session is an ordinary one: max_clients_per_ip refuses
    it with the protocol's error inside the WebSocket, and the rate
    limits count its pings."""
    with Server(plugins=["echo"], server={"max_clients_per_ip": 2}) as srv:
        a = srv.client("tcp")
        b = ws_client(srv)
        c = srv.client("ws", handshake=False)
        frames, code, _ = closed_with(c)
        t.eq([(f.type, f.header.get("error")) for f in frames],
             [("error", "too_many_connections")],
             "a third session from the address: too_many_connections")
        t.eq(code, 1000, "in a WebSocket closed with 1000")
        c.close()
        t.eq(a.sync() + b.sync(), [], "the other two are served")
        a.close()
        b.close()
    with Server(plugins=["echo"], server={
            "max_message_rate": 5, "rate_burst": 1,
            "rate_limit_disconnect": 20}) as srv:
        c = ws_client(srv)
        c.sock.send_frame(frame(OP_PING, b"p") * 200)
        frames, code, _ = closed_with(c, 5)
        t.ok([(f.type, f.json().get("reason")) for f in frames
              if f.type == "disconnect"] ==
             [("disconnect", "Rate limit exceeded")],
             "200 pings at once over 5 a second: closed for the rate "
             "limit", repr(frames))
        t.ok(len(c.sock.pings) < 20, "and not all of them answered",
             "%d pongs" % len(c.sock.pings))
        c.close()


def case_empty_frames_rated(t):
    """Pongs and empty data frames carry nothing the protocol's rates
    count, and cost parsing all the same: a peer without the key sending
    them (six bytes each) as fast as it could kept the server busy for the
    whole handshake_timeout (two such peers: 80% of a core). They count
    toward max_message_rate as pings do."""
    junk = {
        "empty continuation frames": frame(OP_BINARY, b"", fin=False) +
        frame(OP_CONT, b"", fin=False) * 1000,
        "unasked-for pongs": frame(OP_PONG, b"") * 1000,
        "empty binary messages": frame(OP_BINARY, b"") * 1000,
    }
    with Server(plugins=["echo"], server={
            "max_message_rate": 5, "rate_burst": 1,
            "rate_limit_disconnect": 20, "handshake_timeout": 60}) as srv:
        other = ws_client(srv)
        for what, data in junk.items():
            c = srv.client("ws", handshake=False)
            c.sock.send_frame(data)
            frames, code, _ = closed_with(c, 10)
            t.eq([(f.type, f.json().get("reason")) for f in frames
                  if f.type == "disconnect"],
                 [("disconnect", "Rate limit exceeded")],
                 "1000 %s before the handshake, over 5 a second: closed "
                 "for the rate limit" % what)
            c.close()
        t.eq(other.sync(), [], "a session beside them is served")
        other.close()


def case_transport_seen(t):
    """Sessions over ws are counted as such by the metrics."""
    with Server(plugins=["echo"],
                server={"metrics_listen": "127.0.0.1:0"}) as srv:
        url = metrics_url(srv)
        cs = [ws_client(srv), ws_client(srv), srv.client("tcp")]
        m = scrape(url)
        t.eq(m.get("asyncchat_sessions_open_by_transport", transport="ws"),
             2.0, "two sessions open over ws")
        t.eq(m.get("asyncchat_sessions_open_by_transport", transport="tcp"),
             1.0, "one over tcp")
        t.eq(m.get("asyncchat_http_responses_total", code="101"), 2.0,
             "two upgrades")
        for c in cs:
            c.close()


def case_max_memory(t):
    """What WebSocket sessions hold counts toward max_memory: sinks over
    ws that never read are closed for memory-limit while a reader and
    the sender carry on."""
    opts = {"max_memory": "16M", "max_output_buffer": "512M",
            "max_content_size": "1M", "max_header_size": 4096,
            "max_message_rate": 0, "max_byte_rate": 0}
    with Server(plugins=["broadcast"], server=opts) as srv:
        sinks = [srv.client("ws", name="sink%d" % i, rcvbuf=4096)
                 for i in range(4)]
        reader = srv.client("tcp", name="reader")
        sender = srv.client("ws", name="sender")
        frame = sender.frame("message", b"m" * 700)
        n = 8000      # 7 MB in, 7 MB queued to each sink that never reads
        got = 0
        for sent in range(200, n + 1, 200):
            sender.sock.sendall(frame * 200)
            while got < sent:
                got += reader.recv_frame(10).type == "message"
        t.eq(got, n, "the reader got all %d messages" % n)
        m = srv.wait_log(r"closed reason=memory-limit", timeout=5)
        t.ok(m is not None, "sessions are closed for memory-limit",
             srv.log()[-2000:])
        # (A sink's socket is closed, but a peer with a 4 KiB receive
        # buffer takes long to read what the kernel still holds for it:
        # the log says which sessions were closed.)
        ports = set(int(p) for p in re.findall(
            r"closed reason=memory-limit peer=127\.0\.0\.1:(\d+)",
            srv.log()))
        sink_ports = set(c.sock.sock.getsockname()[1] for c in sinks)
        t.ok(ports and ports <= sink_ports, "the sessions closed are "
             "WebSocket sinks that never read", "%r of %r" % (ports,
                                                             sink_ports))
        t.eq(reader.sync(), [], "the reader is still served")
        t.eq(sender.sync(10), [], "the sender over ws is still served")
        for c in sinks + [reader, sender]:
            c.close()


def case_output_bounded(t):
    """A client that sends pings and never reads cannot grow the server's
    memory: past max_output_buffer it is closed as a slow consumer."""
    with Server(plugins=["echo"], server={
            "max_output_buffer": "200K", "max_content_size": "64K",
            "max_message_rate": 0, "max_byte_rate": 0}) as srv:
        c = ws_client(srv, rcvbuf=4096)
        ping = frame(OP_PING, b"p" * 125)
        deadline = time.monotonic() + 20
        gone = False
        c.sock.sock.settimeout(0.5)
        while time.monotonic() < deadline and not gone:
            try:
                c.sock.sock.sendall(ping * 512)
            except (socket.timeout, OSError):
                gone = srv.wait_log(r"closed reason=slow-consumer",
                                    timeout=0.1) is not None
        gone = gone or srv.wait_log(r"closed reason=slow-consumer",
                                    timeout=5) is not None
        t.ok(gone, "closed as a slow consumer", srv.log()[-1500:])
        c.close()
        with srv.client("tcp") as d:
            t.eq(d.sync(), [], "the server serves on")


if __name__ == "__main__":
    main([case_hostile_frames, case_hostile_before_ack, case_stream_in_pieces,
          case_one_message_per_frame, case_ping_pong_close,
          case_empty_frames_rated,
          case_server_closes, case_cut_connections, case_limits_apply,
          case_transport_seen, case_max_memory, case_output_bounded])
