#!/usr/bin/env python3
"""The web page served by asyncchatd itself, in headless Chromium, with the
plugins the shipped configuration loads (logger, chat, history).

Two browser sessions (two windows, each its own tab storage) and one
terminal client (asyncchat on a pty) chat in a room, each seeing the
others' messages with the right names; the page's files all come from the
server, with a clean console. Then the server restarts: while the pages
are away a message is sent, and each page reconnects by itself, rejoins
with its last seq and shows what it missed, each line once.

Screenshots of the conversation at wide and phone width go to the build
dir (tests/web/server-wide.png, server-phone.png); docs/web-wide.png and
docs/web-phone.png are copies of them. The vectors in the browser are
tests/web/test_web.py's.

Skipped, with the reason, without chromium, chromedriver or selenium, or
without the chat and history plugins.
"""

import os
import re

import browser
from harness import (BUILDDIR, CLIENT, PLUGINDIR, Server, free_port, main,
                     mkdtemp, skip_all)

_reason = browser.unavailable()
if _reason:
    skip_all(_reason)
for _name in ("chat", "history"):
    if not os.path.exists(os.path.join(PLUGINDIR, _name + ".so")):
        skip_all("the %s plugin is not built (%s)" % (_name, PLUGINDIR))

from chat import connect, is_said  # noqa: E402
from page import (log_lines, login, members, severe, texts,  # noqa: E402
                  type_line, wait, wait_line)
from selenium.webdriver.common.by import By  # noqa: E402
from term import Pty, plain  # noqa: E402

WAIT = 20.0
RECONNECT = 60.0        # the page's backoff, up to 30 s between tries
SHOTS = os.path.join(BUILDDIR, "tests", "web")
T = rb"\[\d\d:\d\d:\d\d\] "


class Site:
    """asyncchatd as shipped runs it (logger, chat, history), on ports
    that stay the same across restarts: the page comes back to its own
    origin, the terminal client to its port, and history to its file."""

    def __init__(self):
        self.dir = mkdtemp("acsite-")
        self.tcp = free_port()
        self.ws = free_port()
        self.url = "http://127.0.0.1:%d" % self.ws
        self.srv = None

    def start(self, web=True):
        """Start asyncchatd: TCP, and the ws:// listener unless not web."""
        listen = ["tcp://127.0.0.1:%d" % self.tcp]
        if web:
            listen.append("ws://127.0.0.1:%d" % self.ws)
        self.srv = Server(
            plugins=["logger", "chat", "history"], unix=False,
            server={"listen": listen},
            sections={"logger": {"path": os.path.join(self.dir, "msg.log")},
                      "chat": {},
                      "history": {"path": os.path.join(self.dir, "h.db")}})
        if web and self.srv.wait_log(r"listening on ws://127\.0\.0\.1:%d"
                                     % self.ws, timeout=5) is None:
            raise AssertionError("no ws listener:\n" + self.srv.log())
        return self.srv

    def stop(self):
        rc, clean = self.srv.stop()
        if (rc, clean) != (0, True):
            raise AssertionError("asyncchatd stopped with %r" % ((rc, clean),))


class Browsers:
    """One headless Chromium with a window per person."""

    def __init__(self):
        self.b = browser.Browser()
        self.d = self.b.driver
        self.windows = {}

    def window(self, name):
        """Switch to name's window (opened on first use); the driver."""
        if name not in self.windows:
            if self.windows:
                self.d.switch_to.new_window("window")
            self.windows[name] = self.d.current_window_handle
        self.d.switch_to.window(self.windows[name])
        return self.d

    def quit(self):
        self.b.quit()


B = None


def said_by(d, text, nick):
    """Wait for the line text from nick; the line."""
    line = wait_line(d, text, "%r from %s" % (text, nick))
    if line[3] != nick:
        raise AssertionError("%r is shown from %r, not %r" % (text, line[3],
                                                              nick))
    return line


def online(d):
    return d.find_element(By.ID, "status").get_attribute("data-state") == \
        "online"


def case_site(t):
    """The site: three people chat, then the server restarts (one case:
    the harness stops what a case leaves running)."""
    global B
    site = Site()
    B = Browsers()
    three_people(t, site)
    restart(t, site)


def three_people(t, site):
    """Two browsers and a terminal chat in #lobby, by name."""
    srv = site.start()
    d = B.window("alice")
    B.b.size(1280, 800)
    login(d, site.url, "alice", blank="/")
    wait(d, online, "alice online")
    d = B.window("bob")
    login(d, site.url, "bob", blank="/")
    wait(d, online, "bob online")
    p = Pty([CLIENT, "--nick", "carol", "tcp", "interactive", "127.0.0.1",
             str(site.tcp)])
    site.carol = p
    t.ok(p.expect(rb"\[carol #lobby\]> ", WAIT) is not None,
         "the terminal client is in #lobby as carol", plain(p.out))
    for name in ("alice", "bob"):
        d = B.window(name)
        want = sorted([n for n in ("alice", "bob", "carol") if n != name] +
                      [name + " (you)"])
        wait(d, lambda drv: sorted(members(drv)) == want,
             "%s's page to list alice, bob and carol" % name)
        t.ok(True, "%s's page lists the three, itself marked" % name)

    # alice writes in her browser
    d = B.window("alice")
    mark = len(p.out)
    type_line(d, "hello from alice's browser")
    line = said_by(d, "hello from alice's browser", "alice (you)")
    t.ok("own" in line[0], "alice sees her own line, marked as hers",
         repr(line))
    d = B.window("bob")
    line = said_by(d, "hello from alice's browser", "alice")
    t.ok(re.match(r"^\d\d:\d\d$", line[1] or "") and line[2].endswith("Z"),
         "bob sees it from alice, with its time", repr(line))
    t.ok(p.expect(T + rb"<alice> hello from alice's browser\r?\n", WAIT,
                  mark) is not None,
         "the terminal shows it from alice", plain(p.out[mark:]))

    # bob answers from his
    mark = len(p.out)
    type_line(d, "hi alice, bob here")
    said_by(d, "hi alice, bob here", "bob (you)")
    d = B.window("alice")
    said_by(d, "hi alice, bob here", "bob")
    t.ok(True, "alice sees bob's line from bob")
    t.ok(p.expect(T + rb"<bob> hi alice, bob here\r?\n", WAIT, mark)
         is not None, "the terminal shows it from bob", plain(p.out[mark:]))

    # carol types in the terminal
    mark = len(p.out)
    p.type("and carol from the terminal\r")
    t.ok(p.expect(T + rb"<carol \(me\)> and carol from the terminal\r?\n",
                  WAIT, mark) is not None, "the terminal shows its own line")
    for name in ("alice", "bob"):
        d = B.window(name)
        said_by(d, "and carol from the terminal", "carol")
        t.ok(True, "%s's page shows carol's line from carol" % name)
        t.eq([x for x in texts(d) if x in (
            "hello from alice's browser", "hi alice, bob here",
            "and carol from the terminal")],
             ["hello from alice's browser", "hi alice, bob here",
              "and carol from the terminal"],
             "%s's page shows the three lines once each, in order" % name)

    # what the pages loaded, and what the console says
    for name in ("alice", "bob"):
        d = B.window(name)
        loaded = d.execute_script("return performance.getEntriesByType("
                                  "'resource').map((r) => r.name)")
        t.ok(loaded and all(u.startswith(site.url + "/") or
                            u.startswith(site.url.replace("http", "ws") +
                                         "/") for u in loaded),
             "%s: every file the page loaded came from asyncchatd" % name,
             repr(loaded))
        t.eq(severe(B.b.console()), [], "%s: the console shows no error"
             % name)
    with open(os.path.join(site.dir, "msg.log")) as f:
        logged = f.read()
    t.ok('"transport":"ws"' in logged and '"transport":"tcp"' in logged,
         "the logger saw the browsers' messages come over ws",
         logged[-600:])

    # pictures: the conversation, wide and at a phone's width
    d = B.window("alice")
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, "server-wide.png"))
    B.b.size(390, 844, mobile=True)
    width = d.execute_script("return [document.documentElement.scrollWidth, "
                             "innerWidth]")
    t.ok(width[0] <= width[1], "no horizontal scroll at 390 px",
         repr(width))
    d.save_screenshot(os.path.join(SHOTS, "server-phone.png"))
    B.b.size(1280, 800)
    t.ok(os.path.getsize(os.path.join(SHOTS, "server-phone.png")) > 0,
         "screenshots written to tests/web/server-{wide,phone}.png")


def restart(t, site):
    """The server restarts; a message is sent while the pages are away;
    each page comes back by itself and shows it, and nothing twice."""
    site.carol.close()
    site.stop()
    for name in ("alice", "bob"):
        d = B.window(name)
        wait(d, lambda drv: drv.find_element(By.ID, "status")
             .get_attribute("data-state") in ("waiting", "connecting"),
             "%s's page to notice" % name)
        t.ok(True, "%s's page notices the server went" % name)

    # the server is back, without its web listener yet: dave writes
    srv = site.start(web=False)
    dave = connect(srv, "tcp", nick="dave")
    for text in ("sent while you were away", "and again"):
        dave.say(text, extra={"room": "lobby"})
        dave.wait_for(is_said(text, room="lobby"), text)
    dave.close()
    site.stop()

    # and back with it: the pages reconnect by themselves
    site.start()
    for name in ("alice", "bob"):
        d = B.window(name)
        wait(d, online, "%s's page back online" % name, RECONNECT)
        line = wait_line(d, "and again", "%s's page to show what it missed"
                         % name)
        t.eq(line[3], "dave", "%s: the missed message, from dave" % name)
        lines = texts(d)
        for text in ("hello from alice's browser", "hi alice, bob here",
                     "and carol from the terminal",
                     "sent while you were away", "and again"):
            t.eq(lines.count(text), 1, "%s: %r shown once" % (name, text))
        t.eq(d.find_element(By.ID, "me").text, "You are " + name,
             "%s: the same nick after the restart" % name)
    d = B.window("bob")
    type_line(d, "glad to be back")
    d = B.window("alice")
    said_by(d, "glad to be back", "bob")
    t.ok(True, "and the chat goes on")
    froms = [x[3] for x in log_lines(d) if x[4] in
             ("sent while you were away", "glad to be back")]
    t.eq(froms, ["dave", "bob"], "with the right names")


if __name__ == "__main__":
    try:
        main([case_site])
    finally:
        if B is not None:
            B.quit()
