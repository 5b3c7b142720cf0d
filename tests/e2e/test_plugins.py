#!/usr/bin/env python3
"""Plugins against a live asyncchatd: echo, broadcast, logger, chain order,
a plugin returning stop (over TCP and Unix), and plugin loading errors from
startup and from -t."""

import base64
import json
import os
import re
import time

import acproto
from harness import (SRCDIR, Server, main, plugin_dir, test_plugin,
                     transports)
from metrics import metrics_url, scrape

RFC3339_MS = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def case_echo(t):
    with Server(plugins=["echo"]) as srv:
        for tr in transports():
            with srv.client(tr) as a, srv.client(tr) as b:
                sent = a.send_message("héllo wörld".encode("utf-8"), acproto.TEXT_UTF8)
                t.eq(a.recv_frame().raw, sent, "%s: echo to the sender, byte for byte" % tr)
                t.eq(b.expect_silence(0.2), [], "%s: echo reaches no one else" % tr)
                blob = bytes(range(256)) * 4
                sent = a.send_message(blob)
                t.eq(a.recv_frame().raw, sent, "%s: binary content echoes" % tr)
                # compact JSON with an unknown member is relayed verbatim
                hj = ('{"type":"message","content_type":"text/plain","session_id":"%s",'
                      '"nick":"zed"}' % a.session_id).encode()
                raw = acproto.encode_raw(hj, b"compact", a.key)
                a.send_raw(raw)
                t.eq(a.recv_frame().raw, raw, "%s: any JSON spelling relayed verbatim" % tr)
                raw = a.frame("chunk", b"part 1 of something")
                a.send_raw(raw)
                t.eq(a.recv_frame().raw, raw, "%s: chunk frames go through the chain" % tr)


def broadcast_round(t, srv, trs, include_sender, label):
    cs = [srv.client(tr, name="%s%d" % (tr, i)) for i, tr in enumerate(trs)]
    try:
        for i, sender in enumerate(cs):
            sent = sender.send_message(("from %d" % i).encode(), acproto.TEXT_UTF8)
            mine = sender.sync()
            want_mine = [sent] if include_sender else []
            t.eq([f.raw for f in mine], want_mine,
                 "%s: sender %d %s its own message" %
                 (label, i, "gets" if include_sender else "does not get"))
            for j, other in enumerate(cs):
                if j == i:
                    continue
                f = other.recv_frame(3)
                t.ok(f.raw == sent and f.session_id == sender.session_id,
                     "%s: client %d gets client %d's frame verbatim with its id"
                     % (label, j, i), lambda: repr(f))
        for c in cs:
            t.eq(c.sync(), [], "%s: %s has nothing left over" % (label, c.name))
    finally:
        for c in cs:
            c.close()


def case_broadcast(t):
    with Server(plugins=["broadcast"]) as srv:
        for tr in transports():
            broadcast_round(t, srv, [tr] * 3, False, "%s x3" % tr)
        broadcast_round(t, srv, ["tcp", "unix", "ws"], False, "mixed")
    with Server(plugins=["broadcast"],
                sections={"broadcast": {"include_sender": "yes"}}) as srv:
        for tr in transports():
            broadcast_round(t, srv, [tr] * 3, True, "%s include_sender" % tr)


def read_log_lines(path, n, timeout=3.0):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        if len(lines) >= n:
            break
        time.sleep(0.05)
    return lines


def case_logger(t):
    with Server(plugins=["echo", "logger"], start=False) as srv:
        path = os.path.join(srv.dir, "messages.log")
        srv.sections = {"logger": {"path": path}}
        srv.write_config()
        srv.start()
        sent = []
        for tr in transports():
            with srv.client(tr) as c:
                text = ("text über %s" % tr).encode("utf-8")
                c.send_message(text, acproto.TEXT_UTF8)
                c.recv_frame()
                binary = b"\xff\xfe\x00bin-" + tr.encode()
                c.send_message(binary)
                c.recv_frame()
                c.ping()   # heartbeats are not messages: not logged
                sent.append((tr, c.session_id, acproto.TEXT_UTF8, text))
                sent.append((tr, c.session_id, acproto.OCTETS, binary))
        lines = read_log_lines(path, len(sent))
        t.eq(len(lines), len(sent), "one line per message (heartbeats not logged)",
             lambda: "\n".join(x.decode("utf-8", "replace") for x in lines))
        for (tr, sid, ctype, content), line in zip(sent, lines):
            try:
                obj = json.loads(line.decode("utf-8"))
            except ValueError as e:
                t.ok(False, "%s: line is JSON" % tr, "%s: %r" % (e, line))
                continue
            name = "%s %s" % (tr, "text" if ctype == acproto.TEXT_UTF8 else "binary")
            t.ok(isinstance(obj, dict), "%s: line is a JSON object" % name)
            t.ok(isinstance(obj.get("time"), str) and RFC3339_MS.match(obj["time"]),
                 "%s: time is RFC 3339 with milliseconds" % name, repr(obj.get("time")))
            t.eq(obj.get("session_id"), sid, "%s: session_id" % name)
            t.eq(obj.get("type"), "message", "%s: type" % name)
            t.eq(obj.get("content_type"), ctype, "%s: content_type" % name)
            t.eq(obj.get("size"), len(content), "%s: size" % name)
            t.eq(obj.get("transport"), tr, "%s: transport" % name, repr(obj))
            t.ok(isinstance(obj.get("peer"), str) and obj["peer"] != "",
                 "%s: peer named" % name, repr(obj))
            if tr == "tcp":
                t.ok("127.0.0.1" in obj.get("peer", ""), "%s: peer is 127.0.0.1:PORT"
                     % name, repr(obj.get("peer")))
            if ctype == acproto.TEXT_UTF8:
                t.eq(obj.get("content"), content.decode("utf-8"),
                     "%s: UTF-8 content as text" % name, repr(obj))
            else:
                b64 = obj.get("content_base64")
                t.ok(b64 is not None and base64.b64decode(b64) == content
                     and "content" not in obj,
                     "%s: non-UTF-8 content as content_base64" % name, repr(obj))


def case_logger_with_broadcast(t):
    # one line per message, not per recipient; a chunk is logged too
    srv = Server(plugins=["broadcast", "logger"], start=False)
    path = os.path.join(srv.dir, "room.log")
    srv.sections = {"logger": {"path": path}}
    srv.write_config()
    with srv.start():
        cs = [srv.client(tr) for tr in ("tcp", "unix", "tcp")]
        cs[0].send_message(b"to the room")
        cs[0].send("chunk", b"a chunk")
        for c in cs[1:]:
            c.recv_frame()
            c.recv_frame()
        lines = read_log_lines(path, 2)
        time.sleep(0.2)
        lines = read_log_lines(path, 2)
        objs = []
        for x in lines:
            try:
                objs.append(json.loads(x.decode("utf-8")))
            except ValueError:
                objs.append(x)
        t.eq([(o.get("type"), o.get("content"), o.get("session_id")) if isinstance(o, dict)
              else o for o in objs],
             [("message", "to the room", cs[0].session_id),
              ("chunk", "a chunk", cs[0].session_id)],
             "broadcast to 2: one line per message, chunks logged with their type")
        for c in cs:
            c.close()


def case_logger_write_failure(t):
    # /dev/full fails every write: delivery goes on, the failure is logged
    # once per streak (not once per message)
    if not os.path.exists("/dev/full"):
        t.skip("logger write failure", "no /dev/full")
        return
    with Server(plugins=["logger", "echo"],
                sections={"logger": {"path": "/dev/full"}}) as srv:
        for tr in transports():
            with srv.client(tr) as c:
                for i in range(5):
                    sent = c.send_message(b"lost line %d" % i)
                    t.eq(c.recv_frame().raw, sent,
                         "%s: message %d delivered although the log write fails" % (tr, i))
        srv.wait_log("/dev/full", timeout=2)
        time.sleep(0.2)
        n = len([x for x in srv.log().splitlines() if "/dev/full" in x])
        t.eq(n, 1, "the failing write is logged once, not per message", srv.log())


def case_logger_fsync(t):
    """fsync = yes: every line is written, and the fsync runs on the
    worker pool, not on the loop (the pool's metrics count the jobs)."""
    srv = Server(plugins=["logger", "echo"], start=False,
                 server={"metrics_listen": "127.0.0.1:0"})
    path = os.path.join(srv.dir, "synced.log")
    srv.sections = {"logger": {"path": path, "fsync": "yes"}}
    srv.write_config()
    with srv.start():
        with srv.client("tcp") as c:
            for i in range(5):
                sent = c.send_message(b"line %d" % i)
                t.eq(c.recv_frame().raw, sent, "message %d delivered" % i)
        lines = read_log_lines(path, 5)
        t.eq([json.loads(x).get("content") for x in lines],
             ["line %d" % i for i in range(5)], "every line written")
        # The last job's completion may still be on its way: wait for it.
        url = metrics_url(srv)
        deadline = time.monotonic() + 5
        while True:
            m = scrape(url)
            done = m.get("asyncchat_worker_jobs_total", status="done")
            busy = (m.get("asyncchat_worker_jobs_queued") or 0) + \
                (m.get("asyncchat_worker_jobs_running") or 0)
            if (done and not busy) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        t.ok(done is not None and 1 <= done <= 5,
             "1 to 5 fsync jobs ran on the worker pool", repr(done))


def host_abi_version():
    """AC_PLUGIN_ABI_VERSION from the installed header in the source tree."""
    try:
        with open(os.path.join(SRCDIR, "include", "asyncchat", "plugin.h")) as f:
            m = re.search(r"#define\s+AC_PLUGIN_ABI_VERSION\s+(\d+)", f.read())
        return m.group(1) if m else None
    except OSError:
        return None


def chain_case(t, srv, tr, want, label):
    """Send one message; want is a list of 'echo' / 'tag' in arrival order."""
    with srv.client(tr) as c:
        sent = c.send_message(b"chain", acproto.TEXT_UTF8)
        got = c.sync()
        kinds = []
        for f in got:
            if f.raw == sent:
                kinds.append("echo")
            elif f.type == "message" and f.content == b"T1:chain":
                kinds.append("tag")
            else:
                kinds.append(repr(f))
        t.eq(kinds, want, "%s: %s" % (tr, label))


def case_chain_order(t):
    tag = test_plugin("tag")
    sect = {"tag": {"tag": "T1"}}
    with Server(plugins=[tag, "echo"], sections=sect) as srv:
        for tr in transports():
            chain_case(t, srv, tr, ["tag", "echo"], "load = tag, echo: tag first")
    with Server(plugins=["echo", tag], sections=sect) as srv:
        for tr in transports():
            chain_case(t, srv, tr, ["echo", "tag"], "load = echo, tag: echo first")
    # two load lines append in order
    srv = Server(plugins=[], sections=sect, start=False)
    text = srv.config_text().replace("[plugins]\n", "[plugins]\nload = echo\nload = %s\n" % tag, 1)
    srv.write_config(text)
    with srv.start():
        chain_case(t, srv, "tcp", ["echo", "tag"], "two load lines append in order")


def case_stop(t):
    stop = test_plugin("stop_chain")
    tag = test_plugin("tag")
    with Server(plugins=[stop, "echo"]) as srv:
        for tr in transports():
            chain_case(t, srv, tr, [], "stop_chain first: echo never runs")
    with Server(plugins=[tag, stop, "echo"], sections={"tag": {"tag": "T1"}}) as srv:
        for tr in transports():
            chain_case(t, srv, tr, ["tag"], "tag, stop_chain, echo: only tag runs")
    with Server(plugins=["echo", stop, tag], sections={"tag": {"tag": "T1"}}) as srv:
        for tr in transports():
            chain_case(t, srv, tr, ["echo"], "echo, stop_chain, tag: only echo runs")


def load_error(t, label, plugins, needles, sections=None):
    """-t and startup both fail with status 1 naming the plugin."""
    srv = Server(plugins=plugins, sections=sections, start=False)
    rc, out = srv.check(("-t",))
    t.eq(rc, 1, "%s: -t exits 1" % label, out)
    t.ok(all(n in out for n in needles), "%s: -t message names %s" % (label, needles),
         out)
    t.ok("configuration OK" not in out, "%s: -t does not say OK" % label, out)
    rc, out = srv.start_fails()
    t.eq(rc, 1, "%s: startup exits 1" % label, out)
    t.ok(all(n in out for n in needles), "%s: startup message names %s" % (label, needles),
         out)
    t.ok(srv.unix_path is None or not os.path.exists(srv.unix_path),
         "%s: no unix socket left behind" % label)


def case_load_errors(t):
    p = test_plugin("bad_abi")
    abi = host_abi_version()
    t.ok(abi is not None, "AC_PLUGIN_ABI_VERSION found in plugin.h")
    load_error(t, "wrong ABI", [p], ["bad_abi", "999"] + ([abi] if abi else []))
    p = test_plugin("no_entry")
    load_error(t, "missing descriptor", [p], ["no_entry"])
    missing = "/nonexistent-dir-e2e/missing_plugin.so"
    load_error(t, "missing file (absolute)", [missing], [missing])
    load_error(t, "missing file (by name)", ["echo", "no_such_plugin"],
               [os.path.join(plugin_dir(), "no_such_plugin.so")])
    p = test_plugin("init_fails")
    load_error(t, "init failure", ["echo", p], ["init_fails"])


def case_check_ok(t):
    tag = test_plugin("tag")
    stop = test_plugin("stop_chain")
    srv = Server(plugins=["echo", "broadcast", "logger", tag, stop], start=False,
                 sections={"tag": {"tag": "x"}, "broadcast": {"include_sender": "yes"}})
    srv.sections["logger"] = {"path": os.path.join(srv.dir, "m.log")}
    srv.write_config()
    rc, out = srv.check(("-t",))
    t.eq(rc, 0, "-t on a good config with every plugin exits 0", out)
    t.ok("configuration OK" in out, "-t prints 'configuration OK'", out)
    t.ok(not os.path.exists(srv.unix_path), "-t does not create the unix socket")


if __name__ == "__main__":
    main([case_echo, case_broadcast,
          case_logger, case_logger_with_broadcast, case_logger_write_failure,
          case_logger_fsync, case_chain_order, case_stop, case_load_errors,
          case_check_ok])
