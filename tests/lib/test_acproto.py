#!/usr/bin/env python3
"""acproto checked against PROTOCOL.md's vectors (tests/data/frames.json).

Every other Python test trusts acproto to judge the server's bytes, so
acproto must first agree with the vectors: every valid vector encodes to
its frame_hex and decodes back, whatever the segmentation; every invalid
one yields its error token, fatal exactly for checks 1-3.  The decoder
that skips verification (for load generators) still frames and checks
the CRCs; the client's helpers work over a socket pair with no server.
"""

import json
import random
import socket
import threading
import zlib

import acproto
from harness import VECTORS, main

with open(VECTORS) as _f:
    V = json.load(_f)


def case_metadata(t):
    t.eq(tuple(V["check_order"]), acproto.CHECK_ORDER, "check order matches acproto")
    t.eq(V["limits"]["max_header_len"], acproto.MAX_HEADER_LEN, "max header_len")
    t.eq(V["limits"]["max_content_len"], acproto.MAX_CONTENT_LEN, "max content_len")
    t.ok(len(V["valid"]) >= 10, "at least 10 valid vectors (%d)" % len(V["valid"]))
    t.ok(len(V["invalid"]) >= 15, "at least 15 invalid vectors (%d)" % len(V["invalid"]))


def case_valid_encode(t):
    for v in V["valid"]:
        got = acproto.encode_raw(v["header_json"].encode("utf-8"),
                                 bytes.fromhex(v["content_hex"]), v["key"])
        t.eq(got.hex(), v["frame_hex"], "%s encodes to frame_hex" % v["name"])


def case_valid_python_spelling(t):
    # Where a vector uses json.dumps' default spelling, building the header
    # from a dict must give the same bytes: that is how the Python peer sends.
    n = 0
    for v in V["valid"]:
        hdr = json.loads(v["header_json"])
        if acproto.header_bytes(hdr).decode("utf-8") != v["header_json"]:
            continue
        n += 1
        extra = {k: x for k, x in hdr.items()
                 if k not in ("type", "content_type", "session_id")}
        got = acproto.encode(hdr["type"], bytes.fromhex(v["content_hex"]),
                             hdr.get("session_id"), hdr.get("content_type"),
                             v["key"], extra or None)
        t.eq(got.hex(), v["frame_hex"], "%s: encode() from a dict" % v["name"])
    t.ok(n >= 8, "most vectors use the Python spelling (%d)" % n)


def case_valid_decode(t):
    for v in V["valid"]:
        raw = bytes.fromhex(v["frame_hex"])
        f = acproto.decode_one(raw, v["key"])
        ok = isinstance(f, acproto.Frame) and f.raw == raw and \
            f.header_json == v["header_json"].encode("utf-8") and \
            f.content == bytes.fromhex(v["content_hex"])
        t.ok(ok, "%s decodes" % v["name"], lambda: repr(f))


def case_valid_wrong_key(t):
    for v in V["valid"]:
        raw = bytes.fromhex(v["frame_hex"])
        f = acproto.decode_one(raw, v["key"] + "x")
        t.ok(isinstance(f, acproto.FrameError) and f.token == "hmac",
             "%s with another key -> hmac" % v["name"], lambda: repr(f))


def case_valid_segmentation(t):
    frames = [(v, bytes.fromhex(v["frame_hex"])) for v in V["valid"]
              if v["key"] == "default-key"]
    stream = b"".join(raw for _, raw in frames)
    want = [raw for _, raw in frames]

    def run(chunks):
        d = acproto.Decoder()
        out = []
        for c in chunks:
            d.feed(c)
            out.extend(d)
        return out

    got = run([stream])
    t.eq([f.raw for f in got], want, "all vectors in one feed decode in order")
    small = [raw for raw in want if len(raw) < 2000]
    got = run([bytes([b]) for b in b"".join(small)])
    t.eq([f.raw for f in got], small, "one byte at a time")
    rng = random.Random(3)
    for trial in range(5):
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
        got = run(chunks)
        t.eq([f.raw for f in got], want, "random segmentation %d" % trial)
    d = acproto.Decoder()
    d.feed(want[0][:63])
    t.ok(d.next() is None and d.pending() == 63, "63 bytes: waits for more")


def case_invalid(t):
    for v in V["invalid"]:
        raw = bytes.fromhex(v["frame_hex"])
        d = acproto.Decoder(v["key"])
        d.feed(raw)
        item = d.next()
        t.ok(isinstance(item, acproto.FrameError) and item.token == v["error"],
             "%s -> %s" % (v["name"], v["error"]), lambda: repr(item))
        fatal = v["error"] in ("bad_magic", "bad_version", "header_too_large",
                               "content_too_large")
        t.eq(getattr(item, "fatal", None), fatal,
             "%s: fatal=%s" % (v["name"], fatal))


def case_invalid_byte_at_a_time(t):
    # The size checks must fire on the fixed header alone: feeding the first
    # 64 bytes one by one yields the error exactly at byte 64.
    for v in V["invalid"]:
        raw = bytes.fromhex(v["frame_hex"])
        d = acproto.Decoder(v["key"])
        at = None
        item = None
        for i, b in enumerate(raw):
            d.feed(bytes([b]))
            item = d.next()
            if item is not None:
                at = i + 1
                break
        want_at = 64 if v["error"] in acproto.FATAL_ERRORS else len(raw)
        t.ok(isinstance(item, acproto.FrameError) and item.token == v["error"]
             and at == want_at,
             "%s byte by byte -> %s at byte %d" % (v["name"], v["error"], want_at),
             lambda: "got %r at %r" % (item, at))


def case_recovery(t):
    # After a non-fatal error the next frame still decodes; after a fatal
    # one nothing more comes out.
    good = bytes.fromhex(V["valid"][2]["frame_hex"])
    for v in V["invalid"]:
        raw = bytes.fromhex(v["frame_hex"])
        d = acproto.Decoder(v["key"])
        d.feed(raw + good)
        items = list(d)
        if v["error"] in acproto.FATAL_ERRORS:
            ok = len(items) == 1
        else:
            ok = len(items) == 2 and isinstance(items[1], acproto.Frame) and \
                items[1].raw == good
        t.ok(ok, "%s then a valid frame" % v["name"], lambda: repr(items))


def case_lower_limits(t):
    d = acproto.Decoder(max_header=100, max_content=10)
    d.feed(acproto.encode("message", b"x" * 11))
    item = d.next()
    t.ok(isinstance(item, acproto.FrameError) and item.token == "content_too_large",
         "configured content limit", lambda: repr(item))
    d = acproto.Decoder(max_header=100, max_content=10)
    d.feed(acproto.encode("message", b"x" * 10))
    t.ok(isinstance(d.next(), acproto.Frame), "content at the limit passes")
    d = acproto.Decoder(max_header=20)
    d.feed(acproto.encode("message", b"x"))
    item = d.next()
    t.ok(isinstance(item, acproto.FrameError) and item.token == "header_too_large",
         "configured header limit", lambda: repr(item))


def case_fixed_header(t):
    # The parts a test builds a frame from by hand (to announce a body it
    # never sends) are the parts of the vectors.
    for v in V["valid"]:
        raw = bytes.fromhex(v["frame_hex"])
        hj = v["header_json"].encode("utf-8")
        content = bytes.fromhex(v["content_hex"])
        mac = acproto.frame_mac(v["key"], hj, content)
        t.eq(mac, raw[32:64], "%s: frame_mac" % v["name"])
        t.eq(acproto.fixed_header(hj, len(content), zlib.crc32(content), mac),
             raw[:64], "%s: fixed_header" % v["name"])


# The checks a decoder with verify=False still makes: framing and CRCs.
UNVERIFIED_CHECKS = ("bad_magic", "bad_version", "header_too_large",
                     "content_too_large", "header_crc", "content_crc")


def case_unverified(t):
    for v in V["valid"]:
        raw = bytes.fromhex(v["frame_hex"])
        d = acproto.Decoder("not-the-key", verify=False)
        d.feed(raw + raw[:10])
        f = d.next()
        ok = isinstance(f, acproto.Frame) and f.raw == raw and \
            f.header == json.loads(v["header_json"]) and d.next() is None
        t.ok(ok, "%s: framed without verification (any key)" % v["name"],
             lambda: repr(f))
    for v in V["invalid"]:
        raw = bytes.fromhex(v["frame_hex"])
        d = acproto.Decoder(v["key"], verify=False)
        d.feed(raw)
        item = d.next()
        if v["error"] in UNVERIFIED_CHECKS:
            t.ok(isinstance(item, acproto.FrameError) and
                 item.token == v["error"],
                 "%s: still %s without verification" % (v["name"], v["error"]),
                 lambda: repr(item))
        else:
            t.ok(isinstance(item, acproto.Frame) and item.raw == raw,
                 "%s: %s is the caller's check without verification"
                 % (v["name"], v["error"]), lambda: repr(item))


def case_client_pair(t):
    # Two clients on a socket pair, one playing the server: the handshake,
    # sync, messages() and collect() with no server to blame.
    a, b = socket.socketpair()
    srv = acproto.Client(a, "k", "srv")
    cli = acproto.Client(b, "k", "cli", content_type=acproto.TEXT_UTF8)
    got = []

    def serve():
        # The server's side of the handshake: the ack, then the ping.
        got.append(srv.recv_frame(5.0))
        got.append(srv.recv_frame(5.0))
        srv.send("heartbeat", b"pong")

    with srv, cli:
        srv.session_id = "S"
        srv.send("session_init", b"Session established")
        srv.send("message", b"early", session_id="other")
        th = threading.Thread(target=serve)
        th.start()
        sid = cli.handshake(5.0)
        th.join(5.0)
        t.eq(sid, "S", "handshake: the session id of session_init")
        t.eq([(f.type, f.session_id) for f in got],
             [("session_ack", "S"), ("heartbeat", "S")],
             "handshake: session_ack and a ping with that id")
        t.eq([f.content for f in cli.pushback], [b"early"],
             "handshake: a frame that came before the pong is kept")
        cli.send("message", "hi")
        f = srv.recv_frame()
        t.eq((f.content_type, f.content), (acproto.TEXT_UTF8, b"hi"),
             "send: the client's own content_type by default")
        srv.send("chunk", b"c1")
        srv.send("error", b"not a message")
        srv.send("message", b"m2", session_id="other")
        t.eq(cli.messages(0.0), [("other", b"early")],
             "messages(0): what was read already, nothing more")
        t.eq(cli.collect(2, 3.0), [("S", b"c1"), ("other", b"m2")],
             "collect: messages and chunks in order, other frames dropped")
        t.eq(cli.collect(1, 0.2), [], "collect: nothing more by the timeout")
        srv.send("message", b"m3")
        srv.close()
        t.eq([f.content for f in cli.recv_until_closed(3.0)], [b"m3"],
             "recv_until_closed: the frames before EOF")


if __name__ == "__main__":
    main([case_metadata, case_valid_encode, case_valid_python_spelling,
          case_valid_decode, case_valid_wrong_key, case_valid_segmentation,
          case_invalid, case_invalid_byte_at_a_time, case_recovery,
          case_lower_limits, case_fixed_header, case_unverified,
          case_client_pair])
