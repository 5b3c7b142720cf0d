#!/usr/bin/env python3
"""A deliberately minimal chat server, shaped like the original Python one
(vistart/python-socket-demo): it sends session_init, expects session_ack as
the first frame, then reads at most 1024 bytes at a time and decodes ONE
frame from each read, dropping anything else that came with it. It answers
each `message` with one `message` frame ("Server received: ...") and each
heartbeat with a pong (and, for the tests, the message "binary please"
with a few bytes of image/png). A client that works against this works against the
original.

    minimal_server.py [--key KEY] (--tcp PORT | --unix PATH)

It prints one line per event on stdout for the tests to check:
    listening on tcp://127.0.0.1:PORT | listening on unix://PATH
    session ID / ack / message TEXT / ping / disconnect CONTENT /
    dropped N bytes / bad REASON / closed

Imported, it gives the tests MinimalServer: this program as a child
process, with its event log.
"""

import argparse
import asyncio
import os
import sys
import uuid

import acproto
import procs


def log(*words):
    print(*words, flush=True)


class Minimal:
    def __init__(self, key):
        self.key = key

    def send(self, writer, mtype, content, sid, ctype=acproto.OCTETS):
        writer.write(acproto.encode(mtype, content, sid, ctype, self.key))

    def one_frame(self, data):
        """Decode one frame from one read, as the original does."""
        d = acproto.Decoder(self.key)
        d.feed(data)
        item = d.next()
        if isinstance(item, acproto.FrameError):
            log("bad", item)
            return None
        if item is None:
            log("bad", "incomplete frame in one read of %d bytes" % len(data))
            return None
        if len(item.raw) < len(data):
            log("dropped", len(data) - len(item.raw), "bytes")
        return item.header, item.content

    async def handle(self, reader, writer):
        sid = str(uuid.uuid4())
        log("session", sid)
        try:
            self.send(writer, "session_init", "Session established", sid)
            await writer.drain()
            data = await reader.read(1024)
            if not data:
                return
            r = self.one_frame(data)
            if (r is None or r[0].get("type") != "session_ack"
                    or r[0].get("session_id") != sid):
                log("bad", "no session_ack")
                return
            log("ack")
            while True:
                data = await reader.read(1024)
                if not data:
                    break
                r = self.one_frame(data)
                if r is None:
                    continue
                header, content = r
                if header.get("session_id") != sid:
                    log("bad", "wrong session id")
                    break
                t = header.get("type")
                if t == "heartbeat":
                    log("ping")
                    self.send(writer, "heartbeat", "pong", sid)
                elif t == "message":
                    text = content.decode("utf-8", "replace")
                    log("message", text)
                    if text == "binary please":
                        # Still one reply frame, but not text.
                        self.send(writer, "message",
                                  b"\x89PNG\r\n\x1a\n\x00\x01\x1b[2J",
                                  sid, "image/png")
                    else:
                        self.send(writer, "message",
                                  "Server received: " + text, sid,
                                  "text/plain; charset=utf-8")
                elif t == "disconnect":
                    log("disconnect", content.decode("utf-8", "replace"))
                    break
                await writer.drain()
        except (ConnectionError, OSError) as e:
            log("bad", e)
        finally:
            log("closed")
            writer.close()


class MinimalServer(procs.Process):
    """This program in a subprocess (for the tests), with its event log."""

    def __init__(self, unix_path=None, key="default-key"):
        self.dir = procs.mkdtemp("acc.")
        self.unix_path = unix_path
        argv = [sys.executable, os.path.abspath(__file__), "--key", key]
        argv += ["--unix", unix_path] if unix_path else ["--tcp", "0"]
        procs.Process.__init__(self, argv, os.path.join(self.dir,
                                                        "minimal.log"),
                               name="minimal_server")
        m = self.wait_log(r"listening on (?:tcp://127\.0\.0\.1:(\d+)|unix://)",
                          10)
        if not m:
            raise RuntimeError("minimal server did not start:\n" + self.log())
        self.port = int(m.group(1)) if m.group(1) else None

    def events(self):
        return self.log().splitlines()

    def wait_for(self, pred, timeout=5):
        """Wait until pred(events) is true; its value."""
        return procs.wait_until(lambda: pred(self.events()), timeout)

    def stop(self, timeout=0):
        """Kill it (it has nothing to flush)."""
        self.kill()
        return self.returncode, True


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", default="default-key")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--tcp", type=int)
    g.add_argument("--unix")
    a = ap.parse_args()
    m = Minimal(a.key.encode())
    if a.unix:
        server = await asyncio.start_unix_server(m.handle, path=a.unix)
        log("listening on unix://" + a.unix)
    else:
        server = await asyncio.start_server(m.handle, "127.0.0.1", a.tcp)
        port = server.sockets[0].getsockname()[1]
        log("listening on tcp://127.0.0.1:%d" % port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
