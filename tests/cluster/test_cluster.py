#!/usr/bin/env python3
"""Chat across servers: three asyncchatd with `load = chat, cluster` on a
three-server JetStream cluster (nats-server -js, routed, each with its own
store under a temp dir, free loopback ports; R3 stream and buckets).

- rooms span the servers: every member on every node gets every message
  once, with one seq (+1 per room) and one order on all nodes, also with
  senders on three nodes at once; direct messages cross;
- nicks are unique across the cluster (a race of two nodes has one
  winner); join, part, nick and quit reach the other nodes; /who and
  /rooms show the whole cluster; a node killed: its sessions quit
  (node-down) elsewhere and their nicks are free again;
- history from any node: replay on join, /history, and a client that
  drops from node A and comes back on node C with its last seq gets
  exactly what it missed, also while two nodes keep sending (replay and
  live overlap: each message once); a since past the room's end misses
  nothing stored after the join;
- faults: the room stream's leader (one of the three NATS servers) stopped
  and restarted mid-chat (nothing lost, nothing twice); every asyncchatd
  restarted (history and numbering intact); NATS unreachable at start (local sessions served, cluster_down
  in a reply, the log and the metric; the link comes up with NATS);
- a frame injected into a room's subject is refused, not delivered;
- malformed presence and nick entries, heartbeats and direct messages
  published by someone who is not a server are refused (counted, logged),
  show no one, and the node goes on serving;
- a SIGHUP reload of a node: its sessions keep their nicks and rooms,
  numbering goes on, the other nodes see no change;
- configuration: bad keys named, cluster beside history refused.
"""

import json
import os
import signal
import threading
import time

import acproto
import clustertest as ct
from chat import error_of, events, names_of, reply
from clustertest import ChatNode, JsCluster, collect, is_ev, is_room_msg
from procs import wait_until

ROOM_TIMEOUT = 30.0


def start_cluster(n_nodes=3, **kw):
    """A three-server JetStream cluster and n_nodes chat nodes on it, each
    with its link set up."""
    js = JsCluster(3).start()
    names = ["a", "b", "c"][:n_nodes]
    nodes = [ChatNode(name, js.urls, **kw) for name in names]
    for n in nodes:
        if not n.wait_ready_cluster(40):
            raise AssertionError("node %s: no link:\n%s"
                                 % (n.name, n.log()[-3000:]))
    return js, nodes


def who(c, room):
    """The nicks /who lists for room, at client c."""
    return names_of(c.cmd("/who " + room), room)


def wait_who(c, room, nicks, timeout=ROOM_TIMEOUT):
    """Wait until /who room at c lists every nick of nicks."""
    return wait_until(lambda: set(nicks) <= set(who(c, room)), timeout, 0.1)


def until_history_end(c, frames, room="dev", timeout=ROOM_TIMEOUT):
    """frames, plus what comes until the room's history-end is among
    them."""
    frames = list(frames)
    while not [f for f in events(frames, "history-end")
               if f.header["room"].lower() == room]:
        frames.append(c.recv_frame(timeout))
    return frames


def nick(c, name, timeout=ROOM_TIMEOUT):
    """/nick NAME and its reply (which, across servers, waits for the
    claim): the error token, or None when it went."""
    c.say("/nick " + name)
    r = c.wait_for(is_ev("reply", command="nick"), "the /nick reply",
                   timeout)
    return r.header.get("error") if r.header["status"] == "error" else None


def said(frames):
    """The room messages among frames (not events)."""
    return [f for f in frames if "event" not in f.header]


def case_rooms_across_nodes(t):
    js, (a, b, c) = start_cluster()
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    carol = c.chat(nick="carol", rooms=[{"room": "dev"}])
    dave = a.chat(nick="dave", rooms=[{"room": "ops"}])
    for cl in (alice, bob, carol):
        t.ok(wait_who(cl, "dev", ["alice", "bob", "carol"]),
             "/who on node %s lists the members of all three nodes" %
             cl.name)
    texts = []
    for who_, cl in (("alice", alice), ("bob", bob), ("carol", carol)):
        for i in range(3):
            text = "%s %d" % (who_, i)
            texts.append(text)
            cl.say(text, extra={"room": "dev"})
    seen = {}
    for cl in (alice, bob, carol):
        got = collect(cl, is_room_msg("dev"), 9, "messages of #dev")
        seen[cl.name] = got
        t.eq(sorted(f.content.decode() for f in got), sorted(texts),
             "node %s: every message, the sender's own too" % cl.name)
        t.eq([f.header["seq"] for f in got], list(range(1, 10)),
             "node %s: in seq order, 1 to 9, +1 each" % cl.name)
    t.eq([f.raw for f in seen["a"]], [f.raw for f in seen["b"]],
         "nodes a and b: the same frames in the same order")
    t.eq([f.raw for f in seen["a"]], [f.raw for f in seen["c"]],
         "nodes a and c: the same frames in the same order")
    t.eq(said(alice.sync() + bob.sync() + carol.sync()), [],
         "nothing twice")
    t.eq(said(dave.sync()), [], "not to a session outside the room")

    # Direct messages across nodes.
    alice.say("/msg carol psst")
    f = carol.wait_for(lambda f: f.content == b"psst", "the direct message")
    t.eq((f.header.get("to"), f.header.get("from"), "seq" in f.header),
         ("carol", "alice", False), "a direct message crosses to node c")
    got = alice.wait_for(is_ev("reply", command="msg"), "the /msg reply")
    t.eq(got.header["status"], "ok", "and its sender is told once it did")
    t.eq(error_of(alice.cmd("/msg nobody hi")), "no_such_nick",
         "/msg to no one anywhere: no_such_nick")

    # /rooms sees the cluster.
    got = events(carol.cmd("/rooms"), "rooms")[0].header["rooms"]
    rooms = {r["room"].lower(): r["members"] for r in got}
    t.eq((rooms.get("dev"), rooms.get("ops")), (3, 1),
         "/rooms on node c counts every node's members")

    # History from a node that never had the room.
    erin = b.chat(nick="erin", rooms=[])
    got = until_history_end(erin, erin.cmd("/join dev"))
    t.eq([f.header["seq"] for f in said(got)], list(range(1, 10)),
         "a join on any node replays the room from the stream")
    he = [f.header for f in events(got, "history-end")
          if f.header["room"] == "dev"][0]
    t.eq((he["seq"], he["replayed"], he["truncated"]), (9, 9, False),
         "history-end: seq, replayed, truncated")
    got = until_history_end(erin, erin.cmd("/history 2"))
    t.eq([f.raw for f in said(got)], [f.raw for f in seen["a"][7:]],
         "/history 2: the last two, byte for byte as delivered")


def case_senders_on_three_nodes(t):
    js, (a, b, c) = start_cluster()
    clients = [n.chat(nick="s" + n.name, rooms=[{"room": "race"}])
               for n in (a, b, c)]
    for cl in clients:
        wait_who(cl, "race", ["sa", "sb", "sc"])
    per = 25

    def send(cl):
        for i in range(per):
            cl.say("%s-%02d" % (cl.name, i), extra={"room": "race"})
    threads = [threading.Thread(target=send, args=(cl,)) for cl in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    orders = []
    for cl in clients:
        got = collect(cl, is_room_msg("race"), 3 * per, "#race")
        seqs = [f.header["seq"] for f in got]
        t.eq(seqs, list(range(1, 3 * per + 1)),
             "node %s: seq 1..%d, +1 each, no gap, no repeat, though three "
             "nodes sent at once" % (cl.name, 3 * per))
        for n in "abc":
            mine = [f.content.decode() for f in got
                    if f.content.decode().startswith(n + "-")]
            t.eq(mine, ["%s-%02d" % (n, i) for i in range(per)],
                 "node %s: node %s's messages in the order sent" %
                 (cl.name, n))
        orders.append([(f.header["seq"], f.content) for f in got])
    t.ok(orders[0] == orders[1] == orders[2],
         "all three nodes saw one order")
    stored = sum(n.metric("cluster_appends_total") for n in (a, b, c))
    t.eq(stored, 3 * per, "each message stored once, as its node counts "
         "it (%d times a seq was taken first and the message made again)"
         % sum(n.metric("cluster_append_conflicts_total")
               for n in (a, b, c)))

    # Two nodes race for one nick: one wins.
    x = a.chat(nick="x1")
    y = b.chat(nick="y1")
    x.say("/nick zed")
    y.say("/nick zed")      # both claims in flight at once
    rx = x.wait_for(is_ev("reply", command="nick"), "x's reply")
    ry = y.wait_for(is_ev("reply", command="nick"), "y's reply")
    t.eq(sorted([rx.header["status"], ry.header["status"]]),
         ["error", "ok"], "two nodes' /nick zed at once: one ok, one "
         "error")
    t.eq([h.header.get("error") for h in (rx, ry)
          if h.header["status"] == "error"], ["nick_in_use"],
         "the loser gets nick_in_use")


def case_nicks_and_presence(t):
    js, (a, b, c) = start_cluster()
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    t.ok(wait_who(bob, "dev", ["alice", "bob"]), "bob sees alice")
    t.eq(nick(bob, "alice"), "nick_in_use",
         "/nick of a nick held on another node: nick_in_use")
    t.eq(nick(bob, "ALICE"), "nick_in_use",
         "ignoring ASCII case, across nodes too")
    other = c.chat(nick="alice")
    r = [f for f in other.welcome if f.header.get("event") == "reply"]
    t.ok(r and r[0].header.get("error") == "nick_in_use" and
         events(other.welcome, "join")[0].header["nick"].startswith(
             "guest-"), "a handshake asking for it on node c: a guest "
         "nick and nick_in_use", [f.header for f in other.welcome])

    # Events from another node.
    carol = c.chat(nick="carol", rooms=[])
    carol.cmd("/join dev")
    f = bob.wait_for(is_ev("join", room="dev", nick="carol"),
                     "carol's join at bob")
    t.eq(f.header["session"], carol.session_id, "a join on node c "
         "reaches node b, with the session")
    t.eq(nick(carol, "caroline"), None, "/nick on node c")
    f = bob.wait_for(is_ev("nick", old="carol"), "the nick event at bob")
    t.eq(f.header["nick"], "caroline", "a /nick on node c reaches node b")
    t.ok(wait_until(lambda: "caroline" in who(alice, "dev") and
                    "carol" not in who(alice, "dev"), ROOM_TIMEOUT, 0.1),
         "and /who on node a says so")
    carol.cmd("/part dev")
    f = bob.wait_for(is_ev("part", room="dev"), "the part event at bob")
    t.eq(f.header["nick"], "caroline", "a /part on node c reaches node b")
    carol.cmd("/join dev")
    bob.wait_for(is_ev("join", nick="caroline"), "caroline again")
    ct.disconnect(carol)
    f = bob.wait_for(is_ev("quit", nick="caroline"), "her quit at bob")
    t.ok(f.header["reason"] in ("eof", "client-disconnect", "io-error"),
         "a session closing on node c: quit on node b, with its reason "
         "(%s)" % f.header["reason"])
    t.ok(wait_until(lambda: nick(bob, "caroline") is None,
                    ROOM_TIMEOUT, 0.1),
         "and its nick is free again for another node")

    # A node dies: its sessions quit elsewhere, their nicks come free.
    dave = c.chat(nick="dave", rooms=[{"room": "dev"}])
    bob.wait_for(is_ev("join", nick="dave"), "dave's join")
    c.kill()
    f = bob.wait_for(is_ev("quit", nick="dave"), "dave's quit", 30)
    t.eq(f.header["reason"], "node-down",
         "kill -9 of node c: its sessions quit on node b (node-down)")
    t.ok(wait_until(lambda: nick(alice, "dave") is None,
                    ROOM_TIMEOUT, 0.2),
         "and their nicks are free again")


def case_reconnect_elsewhere(t):
    js, (a, b, c) = start_cluster()
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    wait_who(bob, "dev", ["alice", "bob"])
    for i in range(1, 6):
        bob.say("m%d" % i, extra={"room": "dev"})
    got = collect(alice, is_room_msg("dev"), 5, "m1..m5 at alice")
    last = got[-1].header["seq"]
    t.eq(last, 5, "alice saw up to seq 5 on node a")
    ct.disconnect(alice)
    bob.wait_for(is_ev("quit", nick="alice"), "alice gone")
    for i in range(6, 11):
        bob.say("m%d" % i, extra={"room": "dev"})
    collect(bob, lambda f: is_room_msg("dev")(f) and f.header["seq"] > 5,
            5, "bob's own m6..m10")
    back = c.chat(nick="alice", rooms=[{"room": "dev", "since": last}])
    got = until_history_end(back, back.welcome)
    dev = [f for f in got if f.header.get("room", "").lower() == "dev"]
    t.eq([f.header.get("event") or f.content.decode() for f in dev],
         ["join", "names", "m6", "m7", "m8", "m9", "m10", "history-end"],
         "back on node c with since 5: exactly what was missed")
    he = events(dev, "history-end")[0].header
    t.eq((he["seq"], he["replayed"], he["truncated"]), (10, 5, False),
         "history-end: seq 10, 5 replayed")
    bob.say("m11", extra={"room": "dev"})
    f = ct.wait_said(back, "m11")
    t.eq(f.header["seq"], 11, "then live, numbered on")
    t.eq(said(back.sync()), [], "nothing twice")
    t.eq(events(back.welcome, "join")[0].header["nick"], "alice",
         "and her nick, free again")


def case_reconnect_while_sending(t):
    """A client comes back on another node with its last seq while the
    room goes on: the replay reads up to the room's end as it is then,
    live messages arrive meanwhile, and the two overlap; it must get each
    message after its seq once, in order."""
    js, (a, b, c) = start_cluster()
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    carol = a.chat(nick="carol", rooms=[{"room": "dev"}])
    wait_who(bob, "dev", ["bob", "carol"])
    for i in range(1, 6):
        bob.say("w%d" % i, extra={"room": "dev"})
    collect(bob, is_room_msg("dev"), 5, "w1..w5")
    total = 150

    def chatter():
        # Two senders on two nodes, as fast as they can: the nodes store
        # about one a millisecond, so the room moves on in the stream for
        # a while after the joins, as the replays read it.
        for i in range(6, total + 1):
            (bob if i % 2 else carol).say("w%d" % i, extra={"room": "dev"})
    th = threading.Thread(target=chatter)
    th.start()
    try:
        backs = [c.chat(nick="r%d" % k, rooms=[{"room": "dev",
                                                "since": 5}], sync=False)
                 for k in range(3)]
    finally:
        th.join(30)
    for k, back in enumerate(backs):
        got = collect(back, is_room_msg("dev"), total - 5, "w6..w%d" % total)
        t.eq([f.header["seq"] for f in got], list(range(6, total + 1)),
             "client %d back on node c with since 5 while two nodes send: "
             "seq 6..%d, each once, in order" % (k, total))
        t.eq(said(back.sync()), [], "client %d: nothing twice" % k)


def case_since_past_the_end(t):
    """A SINCE past the room's last (a client that saw a numbering since
    lost, or asks for no past) replays nothing, and everything stored
    after the join comes live, as on one server: before, a message stored
    while the replay read the stream was taken as covered by it, and its
    sender's own message never came back."""
    js, (a, b) = start_cluster(2)
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    for i in range(3):
        bob.say("old %d" % i, extra={"room": "dev"})
    collect(bob, is_room_msg("dev"), 3, "bob's own three")
    lost = []
    for k in range(8):
        c = a.chat(nick="j%d" % k, rooms=[{"room": "dev",
                                           "since": 10 ** 12}], sync=False)
        c.say("mine %d" % k, extra={"room": "dev"})    # at once
        try:
            ct.wait_said(c, "mine %d" % k, 20)
        except AssertionError:
            lost.append(k)
        ct.disconnect(c)
    t.eq(lost, [], "eight joins with since past the end, each sending at "
         "once: each gets its own message back")


def case_nats_server_restart(t):
    js, (a, b, c) = start_cluster()
    clients = [n.chat(nick="u" + n.name, rooms=[{"room": "dev"}])
               for n in (a, b, c)]
    for cl in clients:
        wait_who(cl, "dev", ["ua", "ub", "uc"])
    sent = []
    stop_at, start_at, total = 20, 40, 60
    # The stream's leader: its going makes the others elect another while
    # publishes are under way.
    victim = js.stream_leader("asyncchat_rooms")
    t.ok(victim is not None, "the room stream's leader is known (%s)" %
         (victim.srv_name if victim else None))
    victim = victim or js.servers[1]
    for i in range(total):
        if i == stop_at:
            victim.stop()
        if i == start_at:
            victim.start()
        cl = clients[i % 3]
        text = "x%02d" % i
        cl.say(text, extra={"room": "dev"})
        sent.append(text)
    t.ok(not victim.active or victim.poll() is None,
         "nats-server %s, the stream's leader, stopped and started again "
         "mid-chat" % victim.srv_name)
    for cl in clients:
        got = collect(cl, is_room_msg("dev"), total, "#dev", 60)
        t.eq(sorted(f.content.decode() for f in got), sorted(sent),
             "node %s: every message, none lost" % cl.name)
        t.eq([f.header["seq"] for f in got], list(range(1, total + 1)),
             "node %s: seq 1..%d, none twice" % (cl.name, total))
        t.eq(said(cl.sync()), [], "node %s: nothing after" % cl.name)
    errs = [f for cl in clients for f in cl.sync()
            if f.header.get("error") == "cluster_down"]
    t.eq(errs, [], "no message fell back to this node only")


def case_all_nodes_restart(t):
    js, nodes = start_cluster()
    alice = nodes[0].chat(nick="alice", rooms=[{"room": "dev"}])
    bob = nodes[1].chat(nick="bob", rooms=[{"room": "dev"}])
    wait_who(bob, "dev", ["alice", "bob"])
    for i in range(1, 6):
        alice.say("h%d" % i, extra={"room": "dev"})
    before = collect(bob, is_room_msg("dev"), 5, "h1..h5")
    for n in nodes:
        rc = n.stop()
        t.eq(rc, 0, "node %s stops on SIGTERM" % n.name)
    for n in nodes:
        n.start()
        t.ok(n.wait_ready_cluster(40), "node %s up again" % n.name)
    carol = nodes[2].chat(nick="carol", rooms=[{"room": "dev",
                                                  "since": 0}])
    got = until_history_end(carol, carol.welcome)
    t.eq([f.raw for f in said(got)], [f.raw for f in before],
         "after every asyncchatd restarted: the history, byte for byte")
    alice = nodes[1].chat(nick="alice", rooms=[{"room": "dev"}])
    t.eq(events(alice.welcome, "join")[0].header["nick"], "alice",
         "alice comes back under her nick on another node")
    alice.say("h6", extra={"room": "dev"})
    f = ct.wait_said(carol, "h6")
    t.eq(f.header["seq"], 6, "and numbering goes on: seq 6")
    probe = nodes[0].chat(nick="probe")
    t.ok(wait_until(lambda: nick(probe, "alice") == "nick_in_use",
                    ROOM_TIMEOUT, 0.2),
         "her nick is hers across the cluster")
    t.eq([f for f in alice.sync() if f.header.get("event") == "nick"], [],
         "and she was not renamed meanwhile")


def case_nats_down_at_start(t):
    port = ct.free_port()
    n = ChatNode("solo", ["nats://127.0.0.1:%d" % port], replicas=1)
    t.ok(n.wait_log(r"link to NATS down", 10),
         "NATS unreachable at start: the log says the link is down")
    t.eq(n.metric("cluster_link_up"), 0, "cluster_link_up is 0")
    alice = n.chat(nick="alice", rooms=[{"room": "dev"}])
    r = [f for f in alice.welcome if f.header.get("event") == "reply"]
    t.ok(r and r[0].header.get("error") == "cluster_down",
         "a nick asked for: cluster_down in a reply (and a guest nick)",
         [f.header for f in alice.welcome])
    bob = n.chat(nick="bob", rooms=[{"room": "dev"}])
    alice.say("local only", extra={"room": "dev"})
    f = ct.wait_said(bob, "local only")
    t.ok("seq" not in f.header, "a room message reaches this node's "
         "members, without seq")
    r = alice.wait_for(is_ev("reply", command="message"), "the reply")
    t.eq(r.header.get("error"), "cluster_down",
         "and its sender gets cluster_down in a reply")
    t.eq(nick(alice, "alicia"), "cluster_down", "/nick: cluster_down")
    r = events(alice.cmd("/history"), "reply")
    t.ok(r and r[0].header.get("error") == "history_unavailable" and
         b"link to the other servers is down" in r[0].content,
         "/history: history_unavailable, saying the link is down",
         [f.header for f in r])
    single = ct.JsServer("single", port, ct.free_port(), [],
                         ct.mkdtemp("acjs-"))
    single.start()
    t.ok(n.wait_ready_cluster(40), "NATS comes: the link comes up by "
         "itself")
    t.ok(wait_until(lambda: n.metric("cluster_link_up") == 1, 10, 0.1),
         "cluster_link_up is 1")
    alice.say("stored now", extra={"room": "dev"})
    f = ct.wait_said(bob, "stored now")
    t.eq(f.header.get("seq"), 1, "room messages are numbered again")
    got = until_history_end(bob, bob.cmd("/history"))
    t.eq([g.content for g in said(got)], [b"stored now"],
         "and /history reads the stream again")


def case_injected_frames(t):
    js, (a, b) = start_cluster(2)
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    wait_who(alice, "dev", ["alice", "bob"])
    bob.say("before", extra={"room": "dev"})
    ct.wait_said(alice, "before")
    good = acproto.encode("message", b"forged", bob.session_id,
                          ct.acproto.TEXT_UTF8, b"wrong-key",
                          {"room": "dev", "seq": 2, "from": "bob"})
    ct.nats_publish(js.servers[0].port, "asyncchat.room.dev",
                    [good, b"garbage"])
    t.ok(a.wait_log(r"refused a message of asyncchat\.room\.dev", 20),
         "a frame with the wrong key in a room's subject is refused and "
         "logged")
    bob.say("after", extra={"room": "dev"})
    f = ct.wait_said(alice, "after")
    t.eq(f.header["seq"], 2, "the room goes on, numbered after what "
         "the servers stored")
    t.eq([g for g in alice.sync() if g.content in (b"forged", b"garbage")],
         [], "nothing injected reaches a member")
    t.ok(wait_until(lambda: (a.metric("cluster_feed_refused_total") or 0)
                    >= 2, 10, 0.1), "counted in "
         "cluster_feed_refused_total")
    got = until_history_end(alice, alice.cmd("/history 5"))
    t.eq([g.content for g in said(got)], [b"before", b"after"],
         "and a replay steps over them")


def case_malformed_entries(t):
    js, (a, b) = start_cluster(2)
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    wait_who(alice, "dev", ["alice", "bob"])
    port = js.servers[0].port
    before = a.metric("cluster_refused_total")
    sid = "0badc0de-0000-4000-8000-000000000000"
    # A key's entries may be coalesced (a bucket keeps one per key, and
    # its watch may come to a key after its next entry replaced it): one
    # key each.
    for i, entry in enumerate([
            b"{not json",
            json.dumps({"node": "evil", "inst": "0011223344556677",
                        "rooms": ["dev"]}).encode(),         # no nick
            json.dumps({"node": "evil", "inst": "not-an-instance",
                        "nick": "mallory", "rooms": ["dev"]}).encode(),
            json.dumps({"node": "evil", "inst": "0011223344556677",
                        "nick": "m" * 500, "rooms": ["dev"]}).encode()]):
        ct.nats_publish(port, "$KV.asyncchat_presence." + sid[:-1] +
                        str(i), [entry])
    ct.nats_publish(port, "$KV.asyncchat_presence.not_an_id", [b"{}"])
    ct.nats_publish(port, "$KV.asyncchat_nicks." + "6e" * 200, [b"{}"])
    ct.nats_publish(port, "$KV.asyncchat_nicks.6576696c", [b"\xff garbage"])
    ct.nats_publish(port, "asyncchat.hb", [b"garbage", b'{"node": 5}',
                                           b"[1, 2]"])
    ct.nats_publish(port, "asyncchat.direct.a", [b"garbage"],
                    reply="_INBOX.evil", headers={"Asyncchat-To": "alice"})
    want = before + 4 + 1 + 2 + 3 + 1
    t.ok(wait_until(lambda: a.metric("cluster_refused_total") >= want, 20,
                    0.1),
         "each malformed entry, heartbeat and direct message is refused "
         "and counted in cluster_refused_total (%s of %d)"
         % (a.metric("cluster_refused_total") - before, want - before))
    t.ok(a.wait_log(r"refused a (presence entry|nick claim|heartbeat|"
                    r"direct message)", 5),
         "and the log says what was refused and why")
    t.eq(sorted(who(alice, "dev")), ["alice", "bob"],
         "no one made up appears in /who")
    alice.say("still here", extra={"room": "dev"})
    f = ct.wait_said(bob, "still here")
    t.eq(f.header["seq"], 1, "the node goes on serving its sessions and "
         "the room")
    t.eq([g.header for g in alice.sync() + bob.sync()
          if g.header.get("event") in ("join", "quit", "part", "nick")],
         [], "and no event came of them")
    t.eq((a.poll(), b.poll()), (None, None), "both nodes still run")


def case_reload(t):
    js, (a, b) = start_cluster(2)
    alice = a.chat(nick="alice", rooms=[{"room": "dev"}])
    bob = b.chat(nick="bob", rooms=[{"room": "dev"}])
    wait_who(bob, "dev", ["alice", "bob"])
    alice.say("before", extra={"room": "dev"})
    ct.wait_said(bob, "before")
    a.signal(signal.SIGHUP)
    t.ok(a.wait_log(r"configuration reloaded", 20), "node a reloads")
    t.ok(a.wait_log(r"cluster link ready", 30, count=2),
         "its new cluster instance sets its link up")
    alice.say("after", extra={"room": "dev"})
    f = ct.wait_said(bob, "after")
    t.eq((f.header["from"], f.header["seq"]), ("alice", 2),
         "alice keeps her nick and room, and numbering goes on")
    f = ct.wait_said(alice, "after")
    t.eq(f.header["seq"], 2, "she gets her own message back, once")
    bob.say("/msg alice psst")
    t.ok(alice.wait_for(lambda f: f.content == b"psst", "the /msg"),
         "direct messages reach her through the new instance")
    t.eq([f.header for f in bob.sync() if f.header.get("event") in
          ("quit", "part", "nick")], [],
         "and node b saw nobody leave or change")
    t.eq(nick(bob, "alice"), "nick_in_use",
         "her nick is still hers across the cluster")


def case_config(t):
    n = ChatNode("a", ["nats://127.0.0.1:1"], start=False,
                 cluster_opts={"colour": "blue"})
    rc, out = n.check()
    t.ok(rc != 0 and "colour" in out and "line " in out,
         "an unknown key is refused, naming its line", out)
    for key, value in (("node_name", "a.b"), ("replicas", "9"),
                       ("max_age", "forever"), ("heartbeat", "0"),
                       ("subject_prefix", "a..b")):
        n = ChatNode("a", ["nats://127.0.0.1:1"], start=False,
                     cluster_opts={key: value})
        rc, out = n.check()
        t.ok(rc != 0 and key in out and value in out,
             "%s = %s is refused, naming the key" % (key, value), out)
    n = ChatNode("a", ["nats://127.0.0.1:1"], start=False,
                 plugins=("chat", "history", "cluster"))
    rc, out = n.check()
    t.ok(rc != 0 and "history plugin" in out,
         "cluster beside the history plugin is refused, saying why", out)
    n = ChatNode("a", ["nats://127.0.0.1:1"], start=False)
    rc, out = n.check()
    t.eq(rc, 0, "-t passes without NATS", out)


if __name__ == "__main__":
    ct.main([case_rooms_across_nodes, case_senders_on_three_nodes,
             case_nicks_and_presence, case_reconnect_elsewhere,
             case_reconnect_while_sending, case_since_past_the_end,
             case_nats_server_restart, case_all_nodes_restart,
             case_nats_down_at_start, case_injected_frames,
             case_malformed_entries, case_reload,
             case_config])
