#!/usr/bin/env python3
"""Write a seed corpus for a fuzz target from tests/data/frames.json.

fuzz_frame (the default): each vector frame becomes one file (prefixed with
the slice-size byte the frame target reads first), plus a few streams of
several frames back to back.

fuzz_session: inputs in that target's record format (see fuzz_session.c):
each vector as raw bytes after the handshake, each valid vector's header
signed again with the session's own id, a short chat, a session that
never acknowledges, and everything back to back.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="fuzz_frame",
                    choices=("fuzz_frame", "fuzz_session"))
    ap.add_argument("vectors")
    ap.add_argument("out_dir")
    args = ap.parse_args()
    with open(args.vectors) as f:
        vectors = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.target == "fuzz_session":
        session_corpus(vectors, args.out_dir)
    else:
        frame_corpus(vectors, args.out_dir)
    print(f"{len(os.listdir(args.out_dir))} seeds in {args.out_dir}")


if __name__ == "__main__":
    main()
