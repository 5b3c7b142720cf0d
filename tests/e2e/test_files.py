#!/usr/bin/env python3
"""The files asyncchatd touches, against a local attacker (issue 11): the
unix socket (a squatter whose listen queue is full, a symlink put in the
socket's place)."""

import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILDDIR, SERVER, Server, Skip, main  # noqa: E402


def sanitized():
    """True if the server is built with a sanitizer."""
    for path in (os.path.join(os.path.dirname(SERVER), ".libs", "asyncchatd"),
                 SERVER):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        return b"__asan_init" in data
    return False


def squat(path):
    """A unix socket at path that listens but never accepts, with its
    listen queue full: a blocking connect() to it would wait for ever."""
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(0)
    queued = []
    for _ in range(64):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            return lsock, queued
        queued.append(c)
    raise AssertionError("the listen queue of %s never filled" % path)


def case_squatted_socket(t):
    """A unix socket path where someone listens with a full queue is in
    use: the server says so at once, at start and on SIGHUP, and its event
    loop never waits on it."""
    srv = Server(plugins=["echo"], start=False)
    lsock, queued = squat(srv.unix_path)
    try:
        rc, out = srv.start_fails(timeout=8)
        t.eq(rc, 1, "start: exits 1 instead of hanging", out)
        t.ok("address in use" in out, "start: says the address is in use", out)
    finally:
        for s in queued + [lsock]:
            s.close()

    with Server(plugins=["echo"]) as srv:
        c = srv.client("tcp")
        path = os.path.join(srv.dir, "squat.sock")
        lsock, queued = squat(path)
        try:
            srv.server_opts["listen"] = ["tcp://127.0.0.1:0",
                                         "unix://" + srv.unix_path,
                                         "unix://" + path]
            srv.write_config()
            off = len(srv.log())
            srv.signal(signal.SIGHUP)
            t.ok(srv.wait_log(r"reload failed: .*address in use", start=off,
                              timeout=5) is not None,
                 "SIGHUP: the reload is refused (address in use)",
                 srv.log()[off:])
            t.eq(c.sync(), [], "SIGHUP: the event loop goes on serving")
        finally:
            for s in queued + [lsock]:
                s.close()
        c.close()


def case_socket_mode_race(t):
    """Someone who swaps the socket file for a symlink after bind() cannot
    have the server chmod the symlink's target (chmod_race.so plays the
    race won)."""
    shim = os.path.join(BUILDDIR, "tests", "e2e", ".libs", "chmod_race.so")
    if not os.path.exists(shim):
        raise Skip("tests/e2e/.libs/chmod_race.so not built")
    if sanitized():
        raise Skip("LD_PRELOAD before the sanitizer runtime")
    srv = Server(plugins=["echo"], start=False, server={"unix_mode": "0666"})
    victim = os.path.join(srv.dir, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.chmod(victim, 0o600)
    env = {"LD_PRELOAD": shim, "AC_TEST_RACE_PATH": srv.unix_path,
           "AC_TEST_RACE_TARGET": victim}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv.start()
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    with srv:
        t.eq(oct(os.stat(victim).st_mode & 0o777), oct(0o600),
             "the symlink's target keeps its mode")
        st = os.lstat(srv.unix_path)
        t.ok((st.st_mode & 0o170000) == 0o140000 and
             st.st_mode & 0o777 == 0o666,
             "the socket has unix_mode 0666 from its creation",
             oct(st.st_mode))


if __name__ == "__main__":
    main([case_squatted_socket, case_socket_mode_race])
