#!/usr/bin/env python3
"""Plugin APIs 2 and 3 against a live asyncchatd: descriptors of other
sizes (a plugin built against the API 1 header, one from a later header,
one that needs a newer server), a plugin built against the API 2 header
that reads msg->header, session attributes along the chain and in the
logger, named interfaces and their reload rules, frames made once as
coming from a session, session_ack members at session_open, and plugin
metrics that come and go with reloads.  (The worker pool: test_jobs.py.)"""

import json
import os
import re
import signal
import time

import acproto
from harness import Server, main, mkdtemp, test_plugin
from metrics import metrics_url, scrape

TEXT = acproto.TEXT_UTF8


def reload_and_wait(t, srv, what):
    """SIGHUP, then wait for the reload's log line after this point."""
    mark = len(srv.log())
    srv.signal(signal.SIGHUP)
    m = srv.wait_log(r"configuration reloaded|reload failed", timeout=5,
                     start=mark)
    t.ok(m is not None and "reloaded" in m.group(0), "%s: reloaded" % what,
         srv.log()[mark:])
    return mark


def texts(frames):
    return [f.content.decode("utf-8", "replace") for f in frames]


# -- descriptors ------------------------------------------------------------

def case_old_header(t):
    old = test_plugin("old_api")
    newer = test_plugin("newer_desc")
    with Server(plugins=[old, newer, "echo"],
                server={"log_level": "debug"}) as srv:
        m = srv.wait_log(r"plugin old_api loaded: .*API (\d+), descriptor "
                         r"(\d+) bytes")
        t.ok(m is not None and m.group(1) == "1",
             "the API 1 plugin is loaded as API 1", srv.log()[-2000:])
        m2 = srv.wait_log(r"plugin newer_desc loaded: .*descriptor (\d+) "
                          r"bytes")
        t.ok(m and m2 and int(m.group(2)) < int(m2.group(1)),
             "old descriptor shorter than a newer one, both accepted",
             srv.log()[-2000:])
        for tr in ("tcp", "unix"):
            with srv.client(tr) as c:
                sent = c.send_message(b"hi", TEXT)
                got = c.sync()
                t.eq(texts(got[:2]), ["old:1:hi", "newer:hi"],
                     "%s: old and newer plugins both answer, in chain "
                     "order" % tr, repr(got))
                t.ok(len(got) == 3 and got[2].raw == sent,
                     "%s: and the chain goes on to echo" % tr, repr(got))
                c.send_message(b"again", TEXT)
                t.eq(texts(c.sync()[:1]), ["old:2:again"],
                     "%s: the old plugin's session slot works" % tr)
        t.ok(srv.wait_log(r"plugin old_api: session \S+ closed "
                          r"\(\S+\) after 2 messages") is not None,
             "the old plugin's session_close hook runs", srv.log()[-2000:])


def case_api2_reads_header(t):
    """A plugin built against the API 2 header reads msg->header and the
    session_ack's header member directly: the server, which decodes
    without building header objects (API 3), builds them for it."""
    api2 = test_plugin("api2_header")
    with Server(plugins=[api2, "echo"],
                server={"log_level": "debug"}) as srv:
        m = srv.wait_log(r"plugin api2_header loaded: .*API (\d+),")
        t.ok(m is not None and m.group(1) == "2",
             "the API 2 plugin is loaded as API 2", srv.log()[-2000:])
        for tr in ("tcp", "unix"):
            with srv.client(tr, handshake=False) as c:
                c.handshake(ack=False)
                c.send("session_ack", b"Session acknowledged",
                       extra={"nick": "alice"})
                t.eq(texts(c.sync()), ["api2 ack nick=alice"],
                     "%s: session_open reads ack->header" % tr)
                sent = c.send_message(b"hi", TEXT, extra={"tag": "x1"})
                got = c.sync()
                t.eq(texts(got[:1]), ["api2 4 tag=x1"],
                     "%s: process_message reads msg->header" % tr,
                     repr(got))
                t.ok(len(got) == 2 and got[1].raw == sent,
                     "%s: and the chain goes on to echo, verbatim" % tr,
                     repr(got))
                c.send_message(b"again", TEXT)
                t.eq(texts(c.sync()[:1]), ["api2 3 tag=-"],
                     "%s: each message gets its own header object" % tr)


def refused(t, label, plugin, needles):
    srv = Server(plugins=["echo", plugin], start=False)
    rc, out = srv.check(("-t",))
    t.eq(rc, 1, "%s: -t exits 1" % label, out)
    t.ok(all(n in out for n in needles), "%s: -t says %s" % (label, needles),
         out)
    rc, out = srv.start_fails()
    t.eq(rc, 1, "%s: startup exits 1" % label, out)
    t.ok(all(n in out for n in needles), "%s: startup says %s" %
         (label, needles), out)


def api_version():
    path = os.path.join(os.environ.get("AC_TOP_SRCDIR", "."), "include",
                        "asyncchat", "plugin.h")
    with open(path) as f:
        return int(re.search(r"#define\s+AC_PLUGIN_API_VERSION\s+(\d+)",
                             f.read()).group(1))


def case_newer_host_needed(t):
    api = api_version()
    refused(t, "needs a newer API", test_plugin("future_api"),
            ["future_api", "needs plugin API version %d" % (api + 1),
             "server has %d" % api, "upgrade asyncchat"])
    refused(t, "descriptor too small", test_plugin("small_desc"),
            ["small_desc", "smaller than any asyncchat descriptor"])


# -- session attributes -----------------------------------------------------

def attrs_pair(d):
    """Two instances of the attrs module, attrs_a then attrs_b."""
    a = os.path.join(d, "attrs_a.so")
    b = os.path.join(d, "attrs_b.so")
    os.symlink(test_plugin("attrs"), a)
    os.symlink(test_plugin("attrs"), b)
    return a, b


def case_attributes(t):
    d = mkdtemp("acattr-")
    a, b = attrs_pair(d)
    log = os.path.join(d, "m.log")
    srv = Server(plugins=[a, b, "logger"], start=False,
                 sections={"attrs_a": {"set": "nick"},
                           "attrs_b": {"set": "nick, mood"},
                           "logger": {"path": log}})
    with srv.start():
        c = srv.client("tcp")
        c.send_message(b"one", TEXT, extra={"nick": "alice"})
        got = texts(c.sync())
        t.eq(got, ["attrs_a: nick=alice@attrs_a; | set nick=0",
                   "attrs_b: nick=alice@attrs_a; | set nick=-2"],
             "the first setter owns the key; the next plugin sees it at "
             "once and may not change it")
        c.send_message(b"two", TEXT, extra={"mood": "fine",
                                            "attr_probe": "nick"})
        got = texts(c.sync())
        t.eq(got[1], "attrs_b: nick=alice@attrs_a;mood=fine@attrs_b; | "
             "set mood=0 probe nick=alice",
             "a second plugin owns its own key; session_attr reads any",
             repr(got))
        c.send_message(b"three", TEXT, extra={"nick": "b\u00f6b"})
        t.eq(texts(c.sync())[0], "attrs_a: nick=b\u00f6b@attrs_a;"
             "mood=fine@attrs_b; | set nick=0", "the owner changes it")
        c.send_message(b"four", TEXT, extra={"nick": "x" * 1025})
        t.eq(texts(c.sync())[0], "attrs_a: nick=b\u00f6b@attrs_a;"
             "mood=fine@attrs_b; | set nick=-1",
             "a value over 1024 bytes is refused, the old one kept")
        c.send_message(b"five", TEXT, extra={"nick": ""})
        got = texts(c.sync())
        t.eq(got[0], "attrs_a: mood=fine@attrs_b; | set nick=0",
             "the owner removes it")
        t.eq(got[1], "attrs_b: mood=fine@attrs_b; | set nick=0",
             "a removed key is free: the next plugin's removal of "
             "nothing succeeds")
        other = srv.client("unix")
        other.send_message(b"x", TEXT)
        t.eq(texts(other.sync())[0], "attrs_a:  |",
             "attributes are per session")
        other.close()

        lines = []
        for line in open(log, "rb").read().splitlines():
            lines.append(json.loads(line.decode("utf-8")))
        by = {o.get("content"): o.get("attrs") for o in lines}
        t.eq(by.get("one"), {"nick": "alice"},
             "the logger records an attribute set earlier in the chain")
        t.eq(by.get("two"), {"nick": "alice", "mood": "fine"},
             "the logger records every attribute in order")
        t.eq(by.get("three"), {"nick": "b\u00f6b", "mood": "fine"},
             "the logger sees a change made in the same chain pass")
        t.ok("attrs" not in [o for o in lines if o.get("content") == "x"][0],
             "no attrs member for a session without attributes",
             repr(lines))

        # A reload keeps them, owners and all; one without attrs_b drops
        # attrs_b's.
        c.send_message(b"six", TEXT, extra={"nick": "dave"})
        c.sync()
        reload_and_wait(t, srv, "same config")
        c.send_message(b"seven", TEXT)
        t.eq(texts(c.sync())[0], "attrs_a: mood=fine@attrs_b;"
             "nick=dave@attrs_a; |", "attributes survive a reload")
        srv.plugins = [a, "logger"]
        srv.write_config()
        reload_and_wait(t, srv, "without attrs_b")
        c.send_message(b"eight", TEXT)
        t.eq(texts(c.sync())[0], "attrs_a: nick=dave@attrs_a; |",
             "a reload drops the attributes of a plugin no longer loaded")
        c.close()


# -- named interfaces -------------------------------------------------------

def consumer_reply(c):
    c.send_message(b"next", TEXT)
    got = texts(c.sync())
    return got[0] if got else None


def case_interfaces(t):
    prov, cons = test_plugin("provider"), test_plugin("consumer")
    with Server(plugins=[cons, prov]) as srv:
        with srv.client("tcp") as c:
            t.eq(consumer_reply(c), "consumer: at_init=0 version=2 serial=1 "
                 "next=1", "a consumer loaded first finds the interface in "
                 "ready, not in init")
            t.eq(consumer_reply(c), "consumer: at_init=0 version=2 serial=1 "
                 "next=2", "calls reach the provider's state")
    with Server(plugins=[prov, cons]) as srv:
        with srv.client("tcp") as c:
            t.eq(consumer_reply(c), "consumer: at_init=1 version=2 serial=1 "
                 "next=1", "a consumer loaded after finds it in init too")
            reload_and_wait(t, srv, "interfaces")
            t.eq(consumer_reply(c), "consumer: at_init=1 version=2 serial=2 "
                 "next=1", "after a reload: the new provider instance")
            t.ok(srv.wait_log(r"provider fini 1") is not None,
                 "the old provider was finished", srv.log()[-2000:])
    with Server(plugins=[cons]) as srv:
        with srv.client("tcp") as c:
            t.eq(consumer_reply(c), "consumer: no provider",
                 "no provider loaded: the lookup finds nothing")
    srv = Server(plugins=[prov, cons], start=False,
                 sections={"consumer": {"min_version": "3",
                                        "required": "yes"}})
    rc, out = srv.check(("-t",))
    t.ok(rc == 1 and "needs interface test.counter version 3" in out and
         "consumer: not ready" in out,
         "a plugin refusing the chain in ready fails -t, saying why", out)
    srv.sections = {"consumer": {"min_version": "2", "required": "yes"}}
    srv.write_config()
    rc, out = srv.check(("-t",))
    t.ok(rc == 0, "version 2 is enough for min_version 2", out)


def case_interface_kept_for_jobs(t):
    """A job of the old chain completing after a reload still reaches the
    old provider, which the host may not finish before it."""
    prov, cons = test_plugin("provider"), test_plugin("consumer")
    gates = mkdtemp("acgate-")
    with Server(plugins=[cons, prov],
                sections={"consumer": {"gate_dir": gates}}) as srv:
        c = srv.client("tcp")
        c.send_message(b"later g1", TEXT)
        c.sync()
        running = os.path.join(gates, "g1.running")
        deadline = time.monotonic() + 10
        while not os.path.exists(running) and time.monotonic() < deadline:
            time.sleep(0.01)
        t.ok(os.path.exists(running), "the job runs")
        mark = reload_and_wait(t, srv, "mid-job")
        t.ok(srv.wait_log(r"unloading 2 plugins once 1 job", start=mark)
             is not None, "the old chain waits for its job",
             srv.log()[mark:])
        t.ok("provider fini 1" not in srv.log()[mark:],
             "the old provider is not finished while the job runs")
        open(os.path.join(gates, "g1"), "w").close()
        t.ok(srv.wait_log(r"later g1 done next=1 serial=1", start=mark)
             is not None, "the completion calls the old provider",
             srv.log()[mark:])
        t.ok(srv.wait_log(r"provider fini 1", start=mark) is not None,
             "then the old chain is finished", srv.log()[mark:])
        log = srv.log()[mark:]
        t.ok(log.find("later g1") < log.find("provider fini 1"),
             "in that order", log)
        t.eq(consumer_reply(c), "consumer: at_init=0 version=2 serial=2 "
             "next=1", "the new chain works meanwhile and after")
        c.close()


# -- frames made by plugins; session_ack ------------------------------------

def case_send_as_session(t):
    d = mkdtemp("acattr-")
    a, _ = attrs_pair(d)
    with Server(plugins=[a, test_plugin("sendas")],
                sections={"attrs_a": {"set": "nick"}}) as srv:
        cs = [srv.client(tr) for tr in ("tcp", "unix", "tcp")]
        for c in cs:
            c.sync()
        sent = cs[0].send_message("h\u00e9llo".encode("utf-8"), TEXT,
                                  extra={"nick": "ann", "seq": 999})
        frames = []
        for c in cs:
            fs = [f for f in c.sync() if f.type == "message" and
                  not f.text().startswith("attrs_a")]
            frames.append(fs[0] if fs else None)
        f0 = frames[0]
        t.ok(all(f is not None for f in frames), "every session, the "
             "sender included, gets the frame", repr(frames))
        t.ok(len(set(f.raw for f in frames)) == 1,
             "byte for byte the same frame for every recipient")
        t.ok(f0.raw != sent, "a new frame, not the received one")
        t.eq(f0.session_id, cs[0].session_id,
             "it carries the sender's session_id")
        t.eq((f0.header.get("room"), f0.header.get("seq"),
              f0.header.get("from")), ("r1", 1, "ann"),
             "with the members the plugin set (from: the nick attribute)")
        t.eq(list(f0.header)[:3], ["type", "content_type", "session_id"],
             "spelled as the Python peer spells a header")
        t.eq(f0.content.decode("utf-8"), "h\u00e9llo", "content kept")
        # recv_frame verified the HMAC with the shared key; check by hand too
        again = acproto.decode_one(f0.raw, key=srv.key)
        t.ok(getattr(again, "raw", None) == f0.raw,
             "the frame verifies with the key", repr(again))
        cs[1].send_message(b"replay", TEXT)
        got = [f for f in cs[1].sync() if f.type == "message"]
        t.ok(len(got) == 2 and got[1].raw == f0.raw,
             "a frame rebuilt from its stored bytes is the same frame",
             repr(got))
        t.eq(cs[0].expect_silence(0.2), [], "replay goes to one session")
        cs[1].send_message(b"tamper", TEXT)
        t.eq(texts([f for f in cs[1].sync() if f.type == "message"])[-1],
             "tamper refused", "bytes that fail the HMAC are refused")
        for c in cs:
            c.close()


def case_session_ack_members(t):
    with Server(plugins=[test_plugin("sendas")]) as srv:
        c = srv.client("tcp", handshake=False)
        c.handshake(ack=False)
        c.send("session_ack", b"Session acknowledged",
               extra={"nick": "alice",
                      "rooms": [{"room": "dev", "since": 41},
                                {"room": "ops"}]})
        got = texts(c.sync())
        t.eq(got, ['ack nick=alice rooms=[{"room":"dev","since":41},'
                   '{"room":"ops"}]'],
             "session_open sees the session_ack's extra members")
        d = srv.client("unix", handshake=False)
        d.handshake(ack=False)
        d.send("session_ack", b"Session acknowledged")
        t.eq(texts(d.sync()), ["ack nick=- rooms=-"],
             "an ack without members gives none")
        mark = reload_and_wait(t, srv, "ack")
        t.ok(srv.wait_log(r"open without ack %s" % c.session_id,
                          start=mark) is not None,
             "a reload's session_open has no session_ack", srv.log()[mark:])
        t.eq(texts(c.expect_silence(0.2)), [], "and says nothing to it")
        c.close()
        d.close()


# -- plugin metrics ---------------------------------------------------------

def case_plugin_metrics(t):
    meter = test_plugin("meter")
    srv = Server(plugins=[meter, "echo"], start=False,
                 server={"metrics_listen": "127.0.0.1:0"})
    with srv.start():
        url = metrics_url(srv)
        for why in ("asyncchat_meter_stolen", "meter_no_suffix",
                    "meter_unordered", "meter_last_size"):
            t.ok(srv.wait_log(r"plugin meter: metric %s refused" % why)
                 is not None, "%s refused, logged" % why, srv.log()[-2000:])
        m = scrape(url)
        t.eq((m.types.get("meter_messages_total"),
              m.types.get("meter_last_size"), m.types.get("meter_size")),
             ("counter", "gauge", "histogram"),
             "the plugin's families appear with their types")
        t.eq(m.get("meter_messages_total", plugin="meter"), 0.0,
             "labelled plugin=\"meter\", from zero")
        for bad in ("asyncchat_meter_stolen", "meter_no_suffix",
                    "meter_unordered"):
            t.ok(bad not in m.types, "%s does not show" % bad)
        t.eq(m.get("asyncchat_worker_jobs_queued"), 0.0,
             "the worker pool's families are there")
        with srv.client("tcp") as c:
            c.send_message(b"x" * 5)
            c.recv_frame()
            c.send_message(b"y" * 50)
            c.recv_frame()
        m = scrape(url)
        t.eq(m.get("meter_messages_total", plugin="meter"), 2.0,
             "counter counts")
        t.eq(m.get("meter_last_size", plugin="meter"), 50.0, "gauge set")
        t.eq([m.get("meter_size_bucket", plugin="meter", le=le)
              for le in ("10", "100", "1000", "+Inf")], [1.0, 2.0, 2.0, 2.0],
             "histogram buckets are cumulative")
        t.eq((m.get("meter_size_sum", plugin="meter"),
              m.get("meter_size_count", plugin="meter")), (55.0, 2.0),
             "histogram sum and count")
        c1 = m.get("meter_collects", plugin="meter")
        c2 = scrape(url).get("meter_collects", plugin="meter")
        t.ok(c1 is not None and c2 == c1 + 1,
             "collect runs before each scrape", "%r %r" % (c1, c2))

        srv.plugins = ["echo"]
        srv.write_config()
        reload_and_wait(t, srv, "without meter")
        m = scrape(url)
        t.ok(not [k for k in m.types if k.startswith("meter_")],
             "unloaded: its families are gone", repr(sorted(m.types)))
        srv.plugins = [meter, "echo"]
        srv.write_config()
        reload_and_wait(t, srv, "with meter again")
        m = scrape(url)
        t.eq(m.get("meter_messages_total", plugin="meter"), 0.0,
             "loaded again: back, from zero")
        reload_and_wait(t, srv, "same config")
        m = scrape(url)
        t.eq(len([k for k in m.samples if k[0] == "meter_messages_total"]),
             1, "a reload of the same plugin leaves one series, not two")


if __name__ == "__main__":
    main([case_old_header, case_api2_reads_header, case_newer_host_needed, case_attributes,
          case_interfaces, case_interface_kept_for_jobs,
          case_send_as_session, case_session_ack_members,
          case_plugin_metrics])
