#!/usr/bin/env python3
"""Write a seed corpus for a fuzz target from tests/data/frames.json.

fuzz_frame (the default): each vector frame becomes one file (prefixed with
the slice-size byte the frame target reads first), plus a few streams of
several frames back to back.

fuzz_header: the header JSON of each vector, plus headers that show each
rule of the decoder's JSON check (src/lib/header_scan.c).

fuzz_session: inputs in that target's record format (see fuzz_session.c):
each vector as raw bytes after the handshake, each valid vector's header
signed again with the session's own id, a short chat, a session that
never acknowledges, and everything back to back.

fuzz_web: inputs in that target's record format (see fuzz_web.c): HTTP
requests for files, good and bad; upgrades, good and bad; and after an
upgrade a chat in binary messages, control frames, each vector cut
across messages, and the WebSocket frames RFC 6455 forbids.

Usage: make-corpus.py [--target NAME] FRAMES_JSON OUT_DIR
(with tests/lib on PYTHONPATH, as `make fuzz` runs it)
"""
import argparse
import json
import os
import struct

import acproto

RAW, SIGNED, SIGNED_HEADER, PUMP = 0, 1, 2, 3
# fuzz_session.c numbers the types in the protocol's order.
TYPES = acproto.TYPES


def record(kind, payload):
    """One fuzz_session record; raw payloads longer than 64 KiB split."""
    out = b""
    while True:
        part, payload = payload[:0xffff], payload[0xffff:]
        out += struct.pack("!BH", kind, len(part)) + part
        if not payload or kind != RAW:
            return out


def signed(type_name, content, wrong_id=False):
    t = TYPES.index(type_name) | (0x80 if wrong_id else 0)
    return record(SIGNED, bytes([t]) + content)


def signed_header(header_json, content):
    if len(header_json) > 255:
        return b""
    return record(SIGNED_HEADER, bytes([len(header_json)]) + header_json
                  + content)


def pump(n=1):
    return record(PUMP, b"\0" * n)


def frame_parts(v):
    """(header JSON, content) of valid vector v."""
    f = acproto.decode_one(bytes.fromhex(v["frame_hex"]), v["key"])
    return f.header_json, f.content


def session_corpus(vectors, out_dir):
    seeds = {}
    everything = b""
    for group in ("valid", "invalid"):
        for v in vectors[group]:
            frame = bytes.fromhex(v["frame_hex"])
            seeds["raw-%s-%s" % (group, v["name"])] = b"\0" + record(RAW, frame)
            everything += record(RAW, frame) + pump()
    for v in vectors["valid"]:
        header, content = frame_parts(v)
        try:
            h = json.loads(header)
        except ValueError:
            continue
        if isinstance(h, dict) and "session_id" in h:
            h["session_id"] = "$SID"
        rec = signed_header(json.dumps(h).encode(), content)
        if rec:
            seeds["own-%s" % v["name"]] = b"\0" + rec
    chat = (signed("message", b"hello") + signed("heartbeat", b"ping")
            + pump(2) + signed("chunk", b"part") + signed("message", b"x" * 300)
            + signed("message", b"wrong", wrong_id=True)
            + signed("session_init", b"?") + signed("error", b"?")
            + signed("session_ack", b"again") + signed("disconnect", b"bye"))
    seeds["chat"] = b"\0" + chat
    seeds["no-ack"] = b"\1" + signed("message", b"too early") + \
        signed("session_ack", b"late")
    seeds["header-variants"] = b"\0" + b"".join(signed_header(h, b"c") for h in (
        b'{"type": "message", "session_id": "$SID"}',
        b'{"type": "message", "session_id": "$SID", "content_type": 7}',
        b'{"type": "heartbeat", "session_id": "$SID", "extra": [1, {"a": null}]}',
        b'{"type": "message", "session_id": null}',
        b'{"type": 3, "session_id": "$SID"}',
        b'["message"]',
        b'{"type": "message", "session_id": "$SID", "session_id": "x"}',
    ))
    seeds["everything"] = b"\0" + everything
    seeds["handshake-timeout"] = b"\1" + record(PUMP, b"\7")
    seeds["heartbeat-timeout"] = b"\0" + signed("message", b"x" * 5000) + \
        record(PUMP, b"\7") + record(PUMP, b"\6")
    seeds["split-header"] = b"\0" + record(RAW, bytes.fromhex(
        vectors["valid"][0]["frame_hex"])[:30]) + pump(3)
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


WS_FRAME, WS_SIGNED = 1, 2
WEB_UPGRADE, WEB_LOOPBACK, WEB_ACK = 1, 2, 4


def ws(b0, payload=b""):
    """A fuzz_web record: a masked WebSocket frame (b0: FIN, RSV,
    opcode)."""
    return record(WS_FRAME, bytes([b0]) + payload)


def web_signed(type_name, content):
    return record(WS_SIGNED, bytes([TYPES.index(type_name)]) + content)


def web_corpus(vectors, out_dir):
    seeds = {}
    for i, req in enumerate([
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD /js/main.js HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /style.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n"
            b"\r\n",
            b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /js/../index.html?a=b HTTP/1.0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            b"Sec-WebSocket-Version: 13\r\nOrigin: http://evil\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nHost: localhost:1\r\nUpgrade: websocket"
            b"\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "
            b"AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n"
            b"Origin: http://localhost:1\r\n\r\n\x82\x80abcd",
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 70 + b"\r\n",
            b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n"]):
        seeds["http-%d" % i] = b"\2" + record(RAW, req) + pump()
    up = bytes([WEB_UPGRADE | WEB_ACK])
    seeds["chat"] = up + web_signed("message", b"hello") + \
        web_signed("heartbeat", b"ping") + pump(2) + \
        web_signed("message", b"x" * 3000) + ws(0x89, b"ping") + \
        ws(0x8a, b"pong") + web_signed("disconnect", b"bye")
    seeds["no-ack"] = bytes([WEB_UPGRADE]) + web_signed("message", b"x") + \
        record(PUMP, b"\7")
    seeds["close"] = up + ws(0x88, b"\x03\xe8bye")
    seeds["fragments"] = up + ws(0x02, b"") + ws(0x00, b"abc") + \
        ws(0x89, b"mid") + ws(0x80, b"def")
    for i, b0 in enumerate((0x81, 0x83, 0x8b, 0xc2, 0x92, 0x09, 0x80, 0x02)):
        seeds["bad-%d" % i] = up + ws(b0, b"x" * 130)
    for v in vectors["valid"] + vectors["invalid"]:
        frame = bytes.fromhex(v["frame_hex"])
        if len(frame) > 60000:
            continue
        seeds["vector-%s" % v["name"]] = up + ws(0x02, frame[:20]) + \
            ws(0x80, frame[20:])
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)


def frame_corpus(vectors, out_dir):
    frames = []
    for group in ("valid", "invalid"):
        for v in vectors[group]:
            frame = bytes.fromhex(v["frame_hex"])
            frames.append(frame)
            with open(os.path.join(out_dir, f"{group}-{v['name']}"), "wb") as f:
                f.write(bytes([0]) + frame)
    small = [f for f in frames if len(f) < 1024]
    for step in (1, 7, 96):
        with open(os.path.join(out_dir, f"stream-step{step}"), "wb") as f:
            f.write(bytes([step - 1]) + b"".join(small))


HEADER_SEEDS = [
    rb'{"type":"mess\u0061ge","session_id":"\u0036f1c","x":"\ud83d\ude00"}',
    rb'{"type":"message","content_type":"\ud83d\u0041\ude00\ud83d"}',
    rb'{"type":"bogus","type":"chunk","session_id":"a","session_id":null}',
    rb'{"type\u0000x":"chunk","session_id\u0000":"s"}',
    rb'{"type":"message","session_id":"id\u0000evil","content_type":"\u0000"}',
    b' \t\r\n{ "type" : "error" , "content_type" : "t" } \n',
    b'{"type":"message","n":[0,-0,00,-01,01.5,1.,-.5,1e5,1E+5,NaN,'
    b'Infinity,-Infinity]}',
    b'{"type":"message","n":01}',
    b'{"type":"message","a":[true,false,null,{"b":{"c":[[[]]]}}],"":""}',
    b'{"type":"message","a":' + b'[' * 31 + b']' * 31 + b'}',
    b'{"type":"message","x":"\xc0\x80\xed\xa0\x80\xf7\xbf\xbf\xbf\x01"}',
    b"{'type':\"message\"}",
    b'{"type":"message"}\x00',
]


def header_corpus(vectors, out_dir):
    for v in vectors["valid"]:
        header, _ = frame_parts(v)
        with open(os.path.join(out_dir, "valid-%s" % v["name"]), "wb") as f:
            f.write(header)
    for i, seed in enumerate(HEADER_SEEDS):
        with open(os.path.join(out_dir, "rule-%02d" % i), "wb") as f:
            f.write(seed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="fuzz_frame",
                    choices=("fuzz_frame", "fuzz_header", "fuzz_session",
                             "fuzz_web"))
    ap.add_argument("vectors")
    ap.add_argument("out_dir")
    args = ap.parse_args()
    with open(args.vectors) as f:
        vectors = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.target == "fuzz_session":
        session_corpus(vectors, args.out_dir)
    elif args.target == "fuzz_web":
        web_corpus(vectors, args.out_dir)
    elif args.target == "fuzz_header":
        header_corpus(vectors, args.out_dir)
    else:
        frame_corpus(vectors, args.out_dir)
    print(f"{len(os.listdir(args.out_dir))} seeds in {args.out_dir}")


if __name__ == "__main__":
    main()
