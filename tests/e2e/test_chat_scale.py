#!/usr/bin/env python3
"""The chat plugin at scale, and its metrics.

Joining, leaving, sending, renaming and closing must cost O(1) or
O(members of the rooms concerned), never O(all sessions).  Timing cannot
show that in `make check` (the machine is shared), so the plugin counts
its own work: chat_steps_total is the number of entries of its tables and
lists it visited.  The same fixed set of operations, among a few sessions
in a room of their own, is counted with a handful of other sessions on
the server and again with thousands of sessions in thousands of rooms:
the counts must stay the same up to hash-chain noise, and none of the
thousands hears a thing.
"""

import time

from chat import ChatClient, connect, events, messages
from harness import Server, main
from metrics import Metrics, fetch, metrics_url

CROWD = 3000


def scrape(srv):
    """chat's metrics as {name: value} (the plugin="chat" samples)."""
    status, _, text = fetch(metrics_url(srv))
    if status != 200:
        raise AssertionError("metrics: HTTP %d" % status)
    return {name: v for (name, labels), v in Metrics(text).samples.items()
            if labels == (("plugin", "chat"),)}


def wait_metric(srv, name, value, timeout=60.0):
    """Wait until a chat metric reaches value; return the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(srv)
        if got.get(name) == value or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def scale_server():
    # /rooms lists every room here (max_rooms_listed), to test the split
    # of a long list; test_fairness.py tests the default cut.
    return Server(plugins=["chat"],
                  sections={"chat": {"default_room": "",
                                     "max_rooms_listed": 100000}},
                  server={"metrics_listen": "127.0.0.1:0",
                          "max_clients_per_ip": 0, "max_clients": 20000,
                          "heartbeat_timeout": 600,
                          "handshake_timeout": 600})


def workload(srv, tag):
    """A fixed set of operations among three sessions of their own; return
    chat_steps_total spent on them and the frames they caused."""
    start = scrape(srv)
    before = start["chat_steps_total"]
    p = connect(srv, "unix", nick="p-" + tag, rooms=[{"room": "w-" + tag}])
    q = connect(srv, "unix", nick="q-" + tag, rooms=[{"room": "w-" + tag}])
    r = connect(srv, "unix", nick="r-" + tag, rooms=[{"room": "w-" + tag},
                                                     {"room": "x-" + tag}])
    frames = []
    for i in range(20):
        frames += p.cmd("message %d" % i)
    frames += q.cmd("/part w-" + tag)
    frames += q.cmd("/join w-" + tag)
    frames += q.cmd("/join y-" + tag)
    frames += p.cmd("/nick pp-" + tag)
    frames += p.cmd("/msg q-%s hello" % tag)
    frames += p.cmd("hi", extra={"to": "r-" + tag})
    frames += p.cmd("/who")
    frames += q.cmd("/part y-" + tag)
    r.close()
    frames += p.sync()
    frames += q.sync()
    for c in (p, q):
        c.close()
    wait_metric(srv, "chat_users", start["chat_users"])
    after = scrape(srv)["chat_steps_total"]
    return after - before, frames


def crowd(srv, n, prefix):
    """n sessions, each in a room of its own (pairs share one): raw
    handshakes over the unix socket, without waiting for each."""
    cs = []
    for i in range(n):
        c = ChatClient.connect(srv.addr("unix"), key=srv.key, name="c%d" % i)
        init = c.recv_frame(10)
        c.session_id = init.session_id
        c.send("session_ack", b"Session acknowledged",
               extra={"rooms": [{"room": "%s-%d" % (prefix, i // 2)}]})
        cs.append(c)
    return cs


def case_cost_does_not_grow(t):
    with scale_server() as srv:
        few = crowd(srv, 10, "few")
        wait_metric(srv, "chat_users", 10)
        small, frames_small = workload(srv, "a")
        t.ok(small > 50, "the workload is counted: %d steps" % small)
        many = crowd(srv, CROWD, "many")
        got = wait_metric(srv, "chat_users", 10 + CROWD)
        t.eq((got.get("chat_users"), got.get("chat_rooms")),
             (10 + CROWD, 5 + CROWD // 2),
             "%d sessions in %d rooms" % (10 + CROWD, 5 + CROWD // 2))
        large, frames_large = workload(srv, "b")
        t.ok(large <= small * 1.25 + 30,
             "the same workload with %d more sessions: %d steps, %d "
             "before (no O(all sessions) anywhere)" % (CROWD, large, small))
        t.eq(len(frames_large), len(frames_small),
             "and the same frames for its sessions")
        # The crowd heard nothing of the workload: a sample of them, each
        # sees only its own room's events from the handshake.
        quiet = True
        for c in few[:4] + many[:10] + many[-10:]:
            for f in c.sync(10):
                if f.type == "message" and "event" in f.header and \
                        f.header.get("event") not in ("join", "names") or \
                        f.header.get("room", "few").startswith(("w-", "x-",
                                                                  "y-")):
                    quiet = False
        t.ok(quiet, "sessions outside the workload's rooms got nothing of it")
        # /rooms of 1,500 rooms: several events, each but the last "more".
        got = events(many[0].cmd("/rooms", timeout=30), "rooms")
        listed = [r["room"] for f in got for r in f.header["rooms"]]
        t.ok(len(got) > 1 and all(f.header.get("more") is True
                                  for f in got[:-1]) and
             "more" not in got[-1].header,
             "a long list comes in %d rooms events, all but the last with "
             "\"more\": true" % len(got))
        t.eq((len(listed), len(set(listed))), (5 + CROWD // 2,) * 2,
             "together they list every room once")
        t.ok(all(len(f.raw) < 20000 for f in got),
             "each event stays small (largest %d bytes)"
             % max(len(f.raw) for f in got))
        # Fan-out in one room is O(members): one message, 2 deliveries.
        before = scrape(srv)
        a = many[0]
        a.say("pair")
        a.sync(10)
        after = wait_metric(srv, "chat_room_messages_total",
                            before["chat_room_messages_total"] + 1)
        t.eq(after["chat_deliveries_total"] - before["chat_deliveries_total"],
             2, "a message in a room of two: two deliveries")
        got = messages(many[1].sync(10))
        t.eq([f.content for f in got], [b"pair"], "to its room-mate")
        for c in few + many:
            c.close()
        got = wait_metric(srv, "chat_users", 0)
        t.eq((got.get("chat_users"), got.get("chat_rooms"),
              got.get("chat_members")), (0, 0, 0),
             "every session gone: no users, rooms or members left")


def case_big_room_names(t):
    with scale_server() as srv:
        nicks = ["n%03d" % i + "x" * 28 for i in range(300)]
        cs = [connect(srv, "unix", nick=n, rooms=[{"room": "big"}])
              for n in nicks]
        got = events(cs[-1].cmd("/who big", timeout=30), "names")
        t.ok(len(got) > 1 and all(f.header.get("more") is True
                                  for f in got[:-1]) and
             "more" not in got[-1].header and
             all(f.header["room"] == "big" for f in got),
             "the names of 300 members come in %d events" % len(got))
        t.eq([e["nick"] for f in got for e in f.header["names"]], nicks,
             "all of them, in join order")
        t.ok(b"(300)" in got[0].content and b"and 280 more" in got[0].content,
             "the line names 20 and says how many more: %r"
             % got[0].content[:60])
        for c in cs:
            c.close()


def case_metrics(t):
    with scale_server() as srv:
        a = connect(srv, nick="alice", rooms=[{"room": "dev"}])
        b = connect(srv, nick="bob", rooms=[{"room": "dev"}, {"room": "ops"}])
        a.cmd("hello")
        a.cmd("/who")
        a.cmd("/who")
        a.cmd("/nick bob")
        a.cmd("/join b@d")
        a.cmd("/frob")
        a.cmd("/msg bob hi")
        b.sync()
        m = scrape(srv)
        t.eq((m.get("chat_users"), m.get("chat_rooms"), m.get("chat_members")),
             (2, 2, 3), "gauges: users, rooms, members")
        t.eq((m.get("chat_room_messages_total"),
              m.get("chat_direct_messages_total")), (1, 1),
             "messages by kind")
        t.eq((m.get("chat_command_who_total"), m.get("chat_command_nick_total"),
              m.get("chat_command_join_total"),
              m.get("chat_command_unknown_total"),
              m.get("chat_command_msg_total")), (2, 1, 1, 1, 1),
             "commands by name")
        t.eq((m.get("chat_error_nick_in_use_total"),
              m.get("chat_error_bad_room_total"),
              m.get("chat_error_unknown_command_total"),
              m.get("chat_error_no_history_total")), (1, 1, 1, 0),
             "errors by token")
        t.eq(m.get("chat_deliveries_total"), 4,
             "deliveries: the room message to two, the direct one to two")
        t.ok(m.get("chat_events_total", 0) > 0, "events counted")
        b.close()
        t.eq(events(a.sync(), "quit")[0].header["nick"], "bob", "bob quits")
        m = wait_metric(srv, "chat_users", 1)
        t.eq((m.get("chat_users"), m.get("chat_rooms"), m.get("chat_members")),
             (1, 1, 1), "and the gauges follow")


main([case_cost_does_not_grow, case_big_room_names, case_metrics])
