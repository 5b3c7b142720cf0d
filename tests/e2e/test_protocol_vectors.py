#!/usr/bin/env python3
"""acproto checked against PROTOCOL.md's vectors (tests/data/frames.json).

The other e2e tests trust acproto to judge the server's bytes, so acproto
must first agree with the vectors: every valid vector encodes to its
frame_hex and decodes back, whatever the segmentation; every invalid one
yields its error token, fatal exactly for checks 1-3.
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acproto  # noqa: E402
from harness import VECTORS, main  # noqa: E402

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


if __name__ == "__main__":
    main([case_metadata, case_valid_encode, case_valid_python_spelling,
          case_valid_decode, case_valid_wrong_key, case_valid_segmentation,
          case_invalid, case_invalid_byte_at_a_time, case_recovery,
          case_lower_limits])
