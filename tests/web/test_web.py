#!/usr/bin/env python3
"""The web client (web/) in headless Chromium.

The codec in the browser against tests/data/frames.json (every vector its
own cases) and against any cutting of the byte stream; then the page
itself against a fake chat server (fakechat.py) speaking the protocol
over a WebSocket of its own origin: login, names and times, events,
hostile markup shown as text, commands, direct messages, keyboard use,
phone width, reconnection with each room's last seq, leaving, a wrong key
and bad frames. Screenshots at wide and phone width go to the build dir
(tests/web/web-wide.png, web-phone.png).

Skipped, with the reason, when chromium, chromedriver or selenium is
missing. Needs no asyncchatd: the page is served by wsserver.py.
"""

import json
import os
import time

import browser
from harness import BUILDDIR, SRCDIR, VECTORS, main, skip_all

HERE = os.path.dirname(os.path.abspath(__file__))

_reason = browser.unavailable()
if _reason:
    skip_all(_reason)

import acproto  # noqa: E402
import fakechat  # noqa: E402
import wsserver  # noqa: E402
from page import (WAIT, click_view, fresh_page, log_lines,  # noqa: E402
                  login, members, severe, texts, type_line, views, wait,
                  wait_line)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

with open(VECTORS) as _f:
    V = json.load(_f)

CHECKS = "/__test__/checks.js"
SHOTS = os.path.join(BUILDDIR, "tests", "web")
FATAL = ("bad_magic", "bad_version", "header_too_large", "content_too_large")


class Env:
    """One web server and one browser for every case; a fresh fake chat
    server for each case that wants one."""

    def __init__(self):
        self.chat = None
        self.srv = wsserver.WebServer({
            "/": os.path.join(SRCDIR, "web"),
            "/__test__/": HERE,
            "/__data__/": os.path.join(SRCDIR, "tests", "data"),
        }, self._websocket).start()
        self.url = self.srv.url
        t0 = time.monotonic()
        self.b = browser.Browser()
        self.startup = time.monotonic() - t0
        self.d = self.b.driver

    def _websocket(self, ws, request):
        self.chat.serve(WsLink(ws), request.get("origin"))

    def new_chat(self):
        self.chat = fakechat.FakeChat()
        self.srv.accepting = True
        return self.chat


class WsLink:
    """A fake chat session's link (tests/lib/fakechat.py) over a WebSocket:
    binary messages carry the protocol; the page sends no other kind."""

    def __init__(self, ws):
        self.ws = ws
        self.text_messages = 0

    @property
    def closed(self):
        return self.ws.closed

    def recv(self):
        while True:
            opcode, data = self.ws.recv()
            if opcode == wsserver.OP_BINARY:
                return data
            self.text_messages += 1

    def send(self, data):
        self.ws.send(data)

    def send_pieces(self, pieces):
        self.ws.send_pieces(pieces)

    def abort(self):
        self.ws.abort()


ENV = None


def env():
    global ENV
    if ENV is None:
        ENV = Env()
    return ENV


# -- the codec in the browser -------------------------------------------

def case_vectors(t):
    e = env()
    e.new_chat()
    t.diag("chromium started in %.1f s" % e.startup)
    e.d.get(e.url + "/__test__/blank.html")
    got = e.b.run(CHECKS, "checkValid")
    t.eq([r["name"] for r in got], [v["name"] for v in V["valid"]],
         "every valid vector was checked")
    for r in got:
        n = r["name"]
        t.ok(r["encode"], "valid %s: encodes to frame_hex byte for byte" % n,
             "first bytes: " + r["got"])
        t.ok(r["decode"], "valid %s: decodes to its header_json and content"
             % n, r["decodeDetail"])
        t.eq(r["otherKey"], "hmac", "valid %s: with another key -> hmac" % n)
        if r["members"] is not None:
            t.ok(r["members"], "valid %s: built from its members, spelt as "
                 "json.dumps() spells it" % n)
    got = e.b.run(CHECKS, "checkInvalid")
    t.eq([r["name"] for r in got], [v["name"] for v in V["invalid"]],
         "every invalid vector was checked")
    for r in got:
        n = r["name"]
        t.eq(r["got"], r["want"], "invalid %s -> %s" % (n, r["want"]))
        fatal = r["want"] in FATAL
        t.eq(r["fatal"], fatal, "invalid %s: fatal is %s" % (n, fatal))
        if fatal:
            t.eq(r["at"], 64, "invalid %s: refused on the fixed header "
                 "alone, fed a byte at a time" % n)


def case_framing(t):
    e = env()
    e.d.get(e.url + "/__test__/blank.html")
    for r in e.b.run(CHECKS, "checkFraming") + \
            e.b.run(CHECKS, "checkSmallParts"):
        t.ok(r["ok"], r["name"], r.get("detail"))


def case_python_spelling(t):
    e = env()
    e.d.get(e.url + "/__test__/blank.html")
    # Integral floats are left out on purpose: JavaScript cannot tell 1.0
    # from 1, and the client spells both as an int.
    samples = ["plain", "Hello, \u4e16\u754c\uff01", "emoji \U0001F600",
               "controls \x00\x01\x1f\x7f\x80", "quote \" backslash \\ / nl "
               "\n cr \r tab \t bs \b ff \f", "\u2028\u2029\ufeff", "", 0, -5,
               2 ** 53 - 1, 0.1, -2.5, 1e-05, 0.0001, 2.5e-05, 123.456,
               1.2345e-07, 0.30000000000000004, 5e-324, 1.5e-300, 12345.678,
               True, False, None, [], {},
               [1, "a", None, [2, {"k": "v"}]],
               {"room": "dev", "since": 41},
               {"nick": "alice", "rooms": [{"room": "dev", "since": 41},
                                          {"room": "ops"}]},
               {"nested": {"a": [1, 2.5, "\u00e9"]}, "z": True}]
    got = e.b.run(CHECKS, "spell", samples)
    for value, spelt in zip(samples, got):
        t.eq(spelt, json.dumps(value), "pyJson(%s) == json.dumps()" %
             ascii(value)[:60])


# -- the page against the fake chat server --------------------------------

def case_chat(t):
    e = env()
    chat = e.new_chat()
    d = e.d
    e.b.size(1280, 800)
    bob = chat.ghost("lobby", "bob")
    chat.say("lobby", bob, "hello from the past", time="2026-12-06T11:00:00.123Z")
    e.b.console()

    # The prompt.
    fresh_page(d, e.url)
    wait(d, lambda drv: drv.find_element(By.ID, "login-nick").is_displayed(),
         "the login prompt")
    t.eq(d.find_element(By.ID, "login-key").get_attribute("value"),
         "default-key", "the key is prefilled with default-key")
    t.eq(d.switch_to.active_element.get_attribute("id"), "login-nick",
         "the nick field has the focus")
    nick = d.find_element(By.ID, "login-nick")
    nick.send_keys("#alice" + Keys.ENTER)
    err = wait(d, lambda drv: drv.find_element(By.ID, "login-error").text,
               "the login error")
    t.ok("may not begin with" in err, "a nick beginning with # is refused "
         "on the page", err)
    t.eq(len(chat.sessions), 0, "and nothing connected")
    nick.clear()
    nick.send_keys("alice" + Keys.ENTER)

    # The handshake.
    s1 = chat.wait_session(1)
    t.eq(s1.ack.header.get("nick"), "alice", "session_ack carries the nick")
    t.eq((s1.ack.text(), s1.ack.content_type), ("Session acknowledged",
         acproto.OCTETS), "session_ack's content as the Python client's")
    t.ok("rooms" not in s1.ack.header, "the first session_ack asks for no "
         "rooms", repr(s1.ack.header))
    t.eq(s1.origin, e.url, "the WebSocket's Origin is the page's origin")
    t.eq(s1.errors, [], "every frame the page sent verified")
    t.eq(d.execute_script("return sessionStorage.getItem('asyncchat.key')"),
         "default-key", "the key is kept in sessionStorage")

    # History, names, times.
    line = wait_line(d, "hello from the past")
    t.eq(line[3], "bob", "a replayed message shows its sender's nick")
    t.ok(line[1].endswith("11:00") and line[2] == "2026-12-06T11:00:00.123Z",
         "and the time it was sent", repr(line))
    wait(d, lambda drv: sorted(members(drv)) == ["alice (you)", "bob"],
         "members alice and bob")
    t.ok(True, "members come from the names event, own nick marked")
    t.eq(views(d), [["#lobby", "page"]], "the default room is the current "
         "view")
    status = d.find_element(By.ID, "status")
    t.eq(status.get_attribute("data-state"), "online", "the status says "
         "online", status.text)

    # A live message and an event line.
    chat.say("lobby", bob, "live one")
    line = wait_line(d, "live one")
    t.ok(line[0] == "message" and line[3] == "bob", "a live message from bob "
         "shows bob", repr(line))
    chat.ghost("lobby", "carol")
    line = wait_line(d, "* carol joined #lobby")
    t.eq(line[0], "event", "a join event shows as an event line")
    wait(d, lambda drv: "carol" in members(drv), "carol among the members")
    t.ok(True, "the member list follows join events")

    # Hostile markup.
    evil = '<img src=x onerror="window.__pwned=1"><b>bold</b><script>' \
        'window.__pwned=2</script>'
    mallory = chat.ghost("lobby", "<i>mallory</i>")
    chat.say("lobby", mallory, evil)
    line = wait(d, lambda drv: [x for x in log_lines(drv)
                                if x[3] == "<i>mallory</i>"],
                "mallory's message")[0]
    t.ok(True, "a nick with markup shows as text")
    t.eq(line[4], evil, "a message with markup shows as text")
    t.eq(d.execute_script(
        "return document.querySelectorAll('#log img, #log b, #log i, "
        "#log script, #members i').length"), 0,
        "no element was made of a peer's markup")
    t.eq(d.execute_script("return window.__pwned === undefined"), True,
         "no script of a peer ran")

    # The keyboard alone: Tab from the top of the page reaches the input.
    d.execute_script("document.activeElement.blur()")
    order = []
    for _ in range(30):
        ActionChains(d).send_keys(Keys.TAB).perform()
        a = d.switch_to.active_element
        order.append(a.get_attribute("id") or a.tag_name)
        if order[-1] == "input":
            break
    t.eq(order[-1], "input", "Tab reaches the message input", repr(order))
    outline = d.execute_script("""
        const s = getComputedStyle(document.activeElement);
        return [s.outlineStyle, s.outlineWidth];""")
    t.eq(outline, ["solid", "3px"], "the focused input has a visible outline")
    ActionChains(d).send_keys("hello everyone" + Keys.ENTER).perform()
    m = chat.wait(lambda: [f for f in s1.messages()
                           if f.text() == "hello everyone"], what="the message")
    h = m[0].header
    t.eq((h.get("room"), m[0].content_type, m[0].session_id),
         ("lobby", acproto.TEXT_UTF8, s1.sid),
         "Enter sent it to the room shown, as text, with our session id")
    line = wait_line(d, "hello everyone")
    t.ok("own" in line[0] and line[3] == "alice (you)",
         "our own message comes back marked as ours, in words", repr(line))
    t.eq(d.find_element(By.ID, "input").get_attribute("value"), "",
         "the input is empty again")

    # A leading slash and commands, sent as text.
    type_line(d, "//slash stays")
    chat.wait(lambda: any(f.text() == "//slash stays" for f in s1.messages()),
              what="//slash stays")
    t.ok(True, "//text goes as it was typed, for the server to unescape")
    dev_bob = chat.ghost("dev", bob)
    chat.say("dev", dev_bob, "dev history 1")
    chat.say("dev", dev_bob, "dev history 2")
    type_line(d, "/join #dev")
    chat.wait(lambda: any(f.text() == "/join dev" for f in s1.messages()),
              what="/join dev")
    t.ok(True, "/join #dev is sent as /join dev")
    wait(d, lambda drv: ["#dev", "page"] in views(drv), "#dev shown")
    t.ok(True, "the joined room becomes the view shown")
    wait_line(d, "dev history 2")
    t.eq(texts(d).count("dev history 1"), 1, "the room's history is shown "
         "on joining")
    type_line(d, "/who")
    chat.wait(lambda: any(f.text() == "/who dev" for f in s1.messages()),
              what="/who dev")
    t.ok(True, "/who asks about the room shown")
    wait_line(d, "* in #dev: bob alice")
    t.ok(True, "and its answer is shown")
    type_line(d, "/frobnicate")
    line = wait_line(d, "frobnicate: unknown_command")
    t.ok("error" in line[0], "a command's error is shown as an error",
         repr(line))
    chat.say("lobby", bob, "meanwhile in the lobby")
    wait(d, lambda drv: ["#lobby (1 new)", None] in views(drv),
         "an unread count on #lobby")
    t.ok(True, "a message to another room counts as unread there, in words")

    # Direct messages.
    chat.whisper(bob, "alice", "psst, alice")
    wait(d, lambda drv: ["@bob (1 new)", None] in views(drv), "@bob")
    click_view(d, "@bob")
    line = wait_line(d, "psst, alice")
    t.eq(line[3], "bob", "a direct message shows in its own view")
    type_line(d, "psst yourself")
    m = chat.wait(lambda: [f for f in s1.messages()
                           if f.text() == "psst yourself"], what="the reply")
    t.eq((m[0].header.get("to"), "room" in m[0].header), ("bob", False),
         "typing in @bob sends a direct message (to, no room)")
    line = wait_line(d, "psst yourself")
    t.eq(line[3], "alice (you)", "our copy comes back into @bob")

    # Alt+Up and Alt+Down in the input switch views.
    d.find_element(By.ID, "input").send_keys(Keys.ALT, Keys.ARROW_UP)
    wait(d, lambda drv: ["#dev", "page"] in views(drv), "#dev by Alt+Up")
    d.find_element(By.ID, "input").send_keys(Keys.ALT, Keys.ARROW_DOWN)
    wait(d, lambda drv: ["@bob", "page"] in views(drv), "@bob by Alt+Down")
    t.ok(True, "Alt+Up and Alt+Down in the input switch rooms")

    # A view's button keeps the focus when the list is redrawn, and Enter
    # on it shows that view.
    btn = d.find_element(By.CSS_SELECTOR,
                         '#views button[data-view="room:lobby"]')
    d.execute_script("arguments[0].focus()", btn)
    chat.say("dev", dev_bob, "redraws the list")
    wait(d, lambda drv: ["#dev (1 new)", None] in views(drv), "#dev unread")
    t.eq(d.switch_to.active_element.get_attribute("data-view"), "room:lobby",
         "a view's button keeps the focus while the list changes")
    ActionChains(d).send_keys(Keys.ENTER).perform()
    wait(d, lambda drv: ["#lobby", "page"] in views(drv), "#lobby by Enter")
    t.ok(True, "Enter on a view's button shows it")
    click_view(d, "@bob")

    # A new nick: shown, and asked for from now on.
    type_line(d, "/nick alicia")
    wait(d, lambda drv: drv.find_element(By.ID, "me").text ==
         "You are alicia", "the new nick")
    t.ok(True, "/nick changes the nick shown")

    # Pictures, and the phone's width.
    click_view(d, "#lobby")
    wait_line(d, "meanwhile in the lobby")
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, "web-wide.png"))
    e.b.size(375, 812, mobile=True)
    chat.say("lobby", bob, "a" * 300)
    wait_line(d, "a" * 300)
    width = d.execute_script("return [document.documentElement.scrollWidth, "
                             "document.documentElement.clientWidth, "
                             "innerWidth]")
    t.ok(width[0] <= width[1] and width[1] <= 375,
         "at 375 px there is no horizontal scroll, even for a long word",
         repr(width))
    box = d.execute_script("const r = document.getElementById('input')"
                           ".getBoundingClientRect(); return [r.left, "
                           "r.right, r.bottom, innerHeight];")
    t.ok(box[0] >= 0 and box[1] <= 375 and box[2] <= box[3],
         "the input is on the screen at phone width", repr(box))
    d.save_screenshot(os.path.join(SHOTS, "web-phone.png"))
    e.b.size(1280, 800)
    t.eq(severe(e.b.console()), [], "the browser console shows no error")
    loaded = d.execute_script("return performance.getEntriesByType("
                              "'resource').map((r) => r.name)")
    t.ok(loaded and all(u.startswith(e.url + "/") or
                        u.startswith(e.url.replace("http", "ws") + "/")
                        for u in loaded),
         "every file the page loaded came from its own origin",
         repr(loaded))

    # Reconnection: the server goes away, messages are sent meanwhile, the
    # page comes back with each room's last seq and shows each once.
    click_view(d, "#dev")
    lobby_seq, dev_seq = chat.room("lobby").seq, chat.room("dev").seq
    e.srv.accepting = False
    chat.drop_all()
    wait(d, lambda drv: drv.find_element(By.ID, "status")
         .get_attribute("data-state") == "waiting", "the page to notice")
    t.ok("reconnecting" in d.find_element(By.ID, "status").text,
         "the page says it is reconnecting")
    chat.say("lobby", bob, "while you were away")
    chat.say("dev", dev_bob, "dev while away")
    chat.ignore_since = True    # a sloppy server replays everything
    e.srv.accepting = True
    s2 = chat.wait_session(2, timeout=60)
    t.eq(s2.ack.header.get("nick"), "alicia", "the new session_ack asks "
         "for the nick we had")
    t.eq(s2.ack.header.get("rooms"), [{"room": "lobby", "since": lobby_seq},
                                      {"room": "dev", "since": dev_seq}],
         "and rejoins every room with its last seq, the one shown last")
    wait_line(d, "dev while away")
    for text in ("dev history 1", "dev history 2", "dev while away"):
        t.eq(texts(d).count(text), 1, "#dev shows %r once" % text)
    click_view(d, "#lobby")
    wait_line(d, "while you were away")
    for text in ("hello from the past", "live one", "hello everyone",
                 "while you were away"):
        t.eq(texts(d).count(text), 1, "#lobby shows %r once" % text)

    # /part with no room leaves the room shown.
    click_view(d, "#dev")
    type_line(d, "/part")
    chat.wait(lambda: any(f.text() == "/part dev" for f in s2.messages()),
              what="/part dev")
    t.ok(True, "/part leaves the room shown")
    wait(d, lambda drv: "#dev" not in [v[0] for v in views(drv)],
         "#dev to go")
    t.ok(True, "and its view goes")

    # The heartbeat, then leaving.
    p = chat.wait(lambda: s1.pings() or s2.pings(), timeout=WAIT,
                  what="a ping")
    t.eq((p[0].text(), p[0].content_type), ("ping", acproto.OCTETS),
         "the page pings the server")
    d.find_element(By.ID, "leave").click()
    bye = chat.wait(lambda: [f for f in s2.frames if f.type == "disconnect"],
                    what="disconnect")
    t.eq(bye[0].content, json.dumps({"message": "Disconnecting",
                                     "reason": "Leaving"}).encode(),
         "Leave sends disconnect, spelt as the Python client spells it")
    wait(d, lambda drv: drv.find_element(By.ID, "login").is_displayed(),
         "the prompt after leaving")
    t.ok(True, "and shows the prompt again")


def case_wrong_key(t):
    e = env()
    chat = e.new_chat()
    d = e.d
    login(d, e.url, "dave", key="not-the-key")
    err = wait(d, lambda drv: drv.find_element(By.ID, "login").is_displayed()
               and drv.find_element(By.ID, "login-error").text,
               "the error on the prompt")
    t.ok("key" in err, "a wrong key is reported on the prompt", err)
    t.ok(len(chat.sessions) == 1 and chat.sessions[0].ack is None,
         "no session_ack answered the unverified session_init")
    n = len(chat.sessions)
    chat.say("lobby", chat.ghost("lobby", "bob"), "x")   # time passes
    t.eq(len(chat.sessions), n, "the page does not reconnect with that key")


def case_bad_frames(t):
    e = env()
    chat = e.new_chat()
    d = e.d
    login(d, e.url, "erin", key="default-key")
    s1 = chat.wait_session(1)
    wait_line(d, "* erin joined #lobby")
    bad = bytearray(acproto.encode("message", "x", s1.sid, key=chat.key))
    bad[70] ^= 1
    s1.deliver([bytes(bad)])
    wait_line(d, "Dropped a frame from the server (header_crc).")
    t.ok(True, "a corrupt frame is dropped, with a notice")
    bob = chat.ghost("lobby", "bob")
    chat.say("lobby", bob, "still here")
    wait_line(d, "still here")
    t.eq(len(chat.sessions), 1, "and the session goes on")
    s1.deliver([b"\0" * 64])
    s2 = chat.wait_session(2)
    t.ok(s2.ack is not None, "after a bad magic the page reconnects")
    s2.ws.send(b"")            # an empty message is no frame at all
    chat.say("lobby", bob, "after reconnecting")
    wait_line(d, "after reconnecting")
    t.eq(len(chat.sessions), 2, "an empty WebSocket message is harmless")

    # A reload keeps the session's nick and key (sessionStorage): no
    # prompt, the same nick, the rooms asked for again.
    d.refresh()
    s3 = chat.wait_session(3)
    t.eq((s3.ack.header.get("nick"), s3.ack.header.get("rooms")),
         ("erin", [{"room": "lobby"}]),
         "a reload reconnects as the same nick, rejoining its rooms")
    wait_line(d, "after reconnecting")
    t.ok(not d.find_element(By.ID, "login").is_displayed(),
         "without the prompt, the history shown again")
    t.eq(texts(d).count("still here"), 1, "once")


if __name__ == "__main__":
    try:
        main([case_vectors, case_framing, case_python_spelling, case_chat,
              case_wrong_key, case_bad_frames])
    finally:
        if ENV is not None:
            ENV.b.quit()
            ENV.srv.stop()
