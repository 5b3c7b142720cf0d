#!/usr/bin/env python3
"""Every invalid vector of frames.json sent to a live asyncchatd: the
specified error frame, then close (checks 1-3) or the session kept (4-7),
while a second client is served normally.  Also max_errors, configured
limits and garbage from a non-client."""

import json

import acproto
from harness import VECTORS, Server, main, transports

with open(VECTORS) as _f:
    V = json.load(_f)


def check_error_frame(t, e, token, sid, label):
    ok = isinstance(e, acproto.Frame) and e.type == "error" and \
        e.header.get("error") == token and \
        e.content.startswith(token.encode() + b": ") and \
        e.content_type == acproto.TEXT_UTF8 and e.session_id == sid
    t.ok(ok, "%s: error frame '%s: ...' (header error=%s, text/plain utf-8, own id)"
         % (label, token, token), repr(e))


def case_vectors(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr, name="bystander") as b:
                for v in V["invalid"]:
                    label = "%s %s" % (tr, v["name"])
                    a = srv.client(tr, name="offender")
                    try:
                        # the bystander's message is in flight meanwhile
                        bsent = b.send_message(("around %s" % v["name"]).encode())
                        a.send_raw(bytes.fromhex(v["frame_hex"]))
                        try:
                            e = a.recv_frame(3)
                        except (acproto.Closed, acproto.Timeout) as ex:
                            e = ex
                        check_error_frame(t, e, v["error"], a.session_id, label)
                        if v["error"] in acproto.FATAL_ERRORS:
                            try:
                                rest = a.recv_until_closed(2)
                                closed = True
                            except acproto.Timeout:
                                rest, closed = [], False
                            t.ok(closed, "%s: connection closed" % label)
                            t.ok(all(f.type != "error" for f in rest),
                                 "%s: exactly one error frame" % label, repr(rest))
                        else:
                            t.eq(a.sync(), [], "%s: frame dropped, session kept" % label)
                            sent = a.send_message(b"still here")
                            t.eq(a.recv_frame().raw, sent, "%s: offender served after" % label)
                        t.eq(b.recv_frame().raw, bsent, "%s: bystander served normally" % label)
                    finally:
                        a.close()
                t.eq(b.sync(), [], "%s: bystander saw no errors" % tr)
        t.ok(srv.poll() is None, "server survived every invalid vector")


def case_fatal_before_ack(t):
    # Garbage from something that is not a client at all.
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            c = srv.client(tr, handshake=False)
            with c:
                c.handshake(ack=False)
                c.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X" * 64 + b"\r\n\r\n")
                try:
                    e = c.recv_frame(3)
                except (acproto.Closed, acproto.Timeout) as ex:
                    e = ex
                check_error_frame(t, e, "bad_magic", c.session_id, "%s HTTP request" % tr)
                t.ok(c.is_closed(2), "%s HTTP request: closed" % tr)


def case_max_errors(t):
    with Server(plugins=["echo"], server={"max_errors": 3}) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                def bad():
                    raw = bytearray(c.frame("message", b"bad crc"))
                    raw[-1] ^= 0x55
                    return bytes(raw)
                # two in a row, then a valid frame resets the count
                c.send_raw(bad() + bad())
                errs = [c.recv_frame(), c.recv_frame()]
                t.eq([e.header.get("error") for e in errs], ["content_crc"] * 2,
                     "%s: two content_crc errors" % tr)
                t.eq(c.sync(), [], "%s: alive after 2 errors (max_errors=3)" % tr)
                c.send_raw(bad() + bad())
                errs = [c.recv_frame(), c.recv_frame()]
                t.eq(c.sync(), [], "%s: a valid frame reset the count" % tr)
                c.send_raw(bad() + bad() + bad())
                try:
                    frames = c.recv_until_closed(3)
                    closed = True
                except acproto.Timeout:
                    frames, closed = [], False
                t.ok(closed, "%s: closed after 3 errors in a row" % tr)
                disc = [f for f in frames if f.type == "disconnect"]
                reason = None
                if disc:
                    try:
                        reason = disc[-1].json().get("reason")
                    except ValueError:
                        reason = "(not JSON) %r" % disc[-1].content
                t.eq(reason, "Too many errors",
                     "%s: disconnect reason 'Too many errors'" % tr, repr(frames))
                t.ok(len([f for f in frames if f.type == "error"]) <= 3,
                     "%s: no more than 3 error frames" % tr, repr(frames))
        with srv.client("tcp") as c:
            t.eq(c.sync(), [], "server still serves others")


def case_nothing_after_close(t):
    # Frames that follow a closing event in the same segment are never
    # processed: the session is gone (and must not be touched again).
    with Server(plugins=["echo"], server={"max_errors": 3}) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                bad = bytearray(c.frame("message", b"bad"))
                bad[-1] ^= 1
                good = c.frame("message", b"after the limit")
                c.send_raw(bytes(bad) * 3 + good * 5)
                try:
                    frames = c.recv_until_closed(3)
                except acproto.Timeout:
                    frames = None
                t.ok(frames is not None and all(f.raw != good for f in frames),
                     "%s: max_errors reached: closed, later frames in the segment ignored"
                     % tr, repr(frames))
            with srv.client(tr) as c:
                good = c.frame("message", b"after bad magic")
                c.send_raw(b"\x00" * 64 + good * 5)
                try:
                    frames = c.recv_until_closed(3)
                except acproto.Timeout:
                    frames = None
                t.ok(frames is not None and [f.header.get("error") for f in frames]
                     == ["bad_magic"],
                     "%s: bad_magic: one error, closed, nothing else" % tr, repr(frames))
            with srv.client(tr) as c:
                good = c.frame("message", b"after disconnect")
                c.send_raw(c.frame("disconnect", b'{"message": "Disconnecting", "reason": "x"}',
                                   content_type="application/json") + good * 5)
                try:
                    frames = c.recv_until_closed(3)
                except acproto.Timeout:
                    frames = None
                t.ok(frames is not None and all(f.raw != good for f in frames),
                     "%s: client disconnect: later frames in the segment ignored" % tr,
                     repr(frames))
        with srv.client("tcp") as c:
            t.eq(c.sync(), [], "server still serves")


def case_header_json_edges(t):
    # Accepted: any JSON spelling of a header object; the fixed header's
    # msg_type is ignored.  Refused (bad_header, session kept): anything
    # that is not exactly one UTF-8 JSON object with a known string type.
    with Server(plugins=["echo"], server={"max_errors": 100}) as srv:
        with srv.client("tcp") as c:
            sid = c.session_id

            def raw(hj, content=b"edge", msg_type=0):
                if isinstance(hj, str):
                    hj = hj.encode("utf-8")
                return acproto.encode_raw(hj, content, c.key, msg_type=msg_type)

            good = [
                ("msg_type 7 in the fixed header", raw(
                    acproto.header_bytes({"type": "message", "session_id": sid}), msg_type=7)),
                ("\\u escapes in the type", raw(
                    '{"type": "m\\u0065ssage", "session_id": "%s"}' % sid)),
                ("blanks around the object", raw(
                    ' \n\t{"type":"message","session_id":"%s"}\r\n ' % sid)),
                ("no content_type member", raw('{"type":"message","session_id":"%s"}' % sid)),
                ("non-ASCII extension member", raw(
                    '{"type":"message","session_id":"%s","nick":"Zoë 🦊"}' % sid)),
                ("nested extension member", raw(
                    '{"type":"message","session_id":"%s","x":{"a":[1,2,{"b":null}]}}' % sid)),
            ]
            for label, frame in good:
                c.send_raw(frame)
                got = c.sync()
                t.eq([f.raw for f in got], [frame], "accepted and relayed verbatim: %s" % label,
                     repr(got))
            bad = [
                ("trailing garbage after the object",
                 '{"type":"message","session_id":"%s"} x' % sid),
                ("two objects", '{"type":"message","session_id":"%s"}{}' % sid),
                ("invalid UTF-8 in a string",
                 b'{"type":"message","session_id":"' + sid.encode() + b'","n":"\xff\xfe"}'),
                ("a NUL byte", b'{"type":"message",\x00"session_id":"' + sid.encode() + b'"}'),
                ("type in upper case", '{"type":"MESSAGE","session_id":"%s"}' % sid),
                ("type with a trailing blank", '{"type":"message ","session_id":"%s"}' % sid),
                ("type null", '{"type":null,"session_id":"%s"}' % sid),
                ("a JSON string", '"message"'),
                ("60000 open brackets", "[" * 60000),
            ]
            for label, hj in bad:
                c.send_raw(raw(hj))
                try:
                    got = c.sync()
                except (acproto.Closed, acproto.Timeout) as e:
                    got = [e]
                ok = len(got) == 1 and isinstance(got[0], acproto.Frame) and \
                    got[0].type == "error" and got[0].header.get("error") == "bad_header"
                t.ok(ok, "bad_header, session kept: %s" % label, repr(got))
                if c.eof:
                    break


def case_default_max_errors(t):
    # the default is 10 in a row
    with Server(plugins=["echo"]) as srv:
        with srv.client("tcp") as c:
            bad = acproto.encode("message", b"x", "not-my-session-id", key=c.key)
            c.send_raw(bad * 9)
            errs = [c.recv_frame() for _ in range(9)]
            t.eq([e.header.get("error") for e in errs], ["session_mismatch"] * 9,
                 "9 foreign session ids -> 9 session_mismatch errors")
            t.eq(c.sync(), [], "alive after 9 errors (default max_errors 10)")
            c.send_raw(bad * 10)
            try:
                frames = c.recv_until_closed(3)
                closed = True
            except acproto.Timeout:
                frames, closed = [], False
            t.ok(closed, "closed after 10 in a row")


def case_configured_limits(t):
    opts = {"max_header_size": 1024, "max_content_size": 4096}
    with Server(plugins=["echo"], server=opts) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                sent = c.send_message(b"x" * 4096)
                t.eq(c.recv_frame().raw, sent, "%s: content at max_content_size passes" % tr)
                pad = "p" * (1024 - len(acproto.header_bytes(
                    {"type": "message", "content_type": "a", "session_id": c.session_id,
                     "pad": ""})))
                sent = c.send_message(b"h", content_type="a", extra={"pad": pad})
                t.eq(len(sent) - 64 - 1, 1024, "%s: (header is exactly 1024 bytes)" % tr)
                t.eq(c.recv_frame().raw, sent, "%s: header at max_header_size passes" % tr)
            with srv.client(tr) as c:
                # only the fixed header is sent: the server must not wait for the rest
                c.send_raw(c.frame("message", b"y" * 4097)[:64])
                check_error_frame(t, c.recv_frame(), "content_too_large", c.session_id,
                                  "%s: 4097-byte content" % tr)
                t.ok(c.is_closed(2), "%s: closed after content_too_large" % tr)
            with srv.client(tr) as c:
                c.send_raw(c.frame("message", b"z", extra={"pad": "q" * 1024})[:64])
                check_error_frame(t, c.recv_frame(), "header_too_large", c.session_id,
                                  "%s: 1025+-byte header" % tr)
                t.ok(c.is_closed(2), "%s: closed after header_too_large" % tr)


if __name__ == "__main__":
    main([case_vectors, case_fatal_before_ack, case_max_errors,
          case_nothing_after_close, case_header_json_edges, case_default_max_errors,
          case_configured_limits])
