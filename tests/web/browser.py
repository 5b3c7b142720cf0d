"""Headless Chromium for the web client's tests, or the reason there is none.

Debian's chromium and chromium-driver, driven by Debian's python3-selenium,
which only the system python may import: unavailable() re-executes the
test under a python that has selenium (AC_SELENIUM_PYTHON, found by
configure, else /usr/bin/python3) and otherwise returns why the test must
be skipped.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

CHROMIUM = os.environ.get("AC_CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("AC_CHROMEDRIVER") or "/usr/bin/chromedriver"

# The machine's network is closed: these keep Chromium from trying to
# reach anything but the test's own server.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions",
         "--no-default-browser-check", "--password-store=basic",
         "--disable-dev-shm-usage"]

SCRIPT_TIMEOUT = 120


def _has_selenium(python):
    try:
        return subprocess.run([python, "-c", "import selenium"],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def unavailable():
    """None if the browser tests can run here, else the reason to skip."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        tried = []
        for python in (os.environ.get("AC_SELENIUM_PYTHON"),
                       "/usr/bin/python3"):
            if not python or python == "no" or python in tried:
                continue
            tried.append(python)
            if os.path.realpath(python) == os.path.realpath(sys.executable):
                continue
            if os.access(python, os.X_OK) and _has_selenium(python):
                sys.stdout.flush()
                os.execv(python, [python] + sys.argv)
        return ("selenium is not importable by %s nor by %s "
                "(apt-get install python3-selenium)" %
                (sys.executable, ", ".join(tried) or "another python"))
    for path, package in ((CHROMIUM, "chromium"),
                          (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return "%s is missing (apt-get install %s)" % (path, package)
    return None


class Browser:
    """One headless Chromium with a fresh profile in a temporary dir."""

    def __init__(self, width=1280, height=800):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.dir = tempfile.mkdtemp(prefix="acweb-", dir="/tmp")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS + ["--user-data-dir=" + os.path.join(self.dir, "profile"),
                          "--window-size=%d,%d" % (width, height)]:
            opts.add_argument(f)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Times are shown in local time: make it UTC for the assertions.
        env = dict(os.environ, TZ="UTC", LANG="C.UTF-8")
        service = Service(CHROMEDRIVER, env=env,
                          log_path=os.path.join(self.dir, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_script_timeout(SCRIPT_TIMEOUT)
        atexit.register(self.quit)

    def size(self, width, height, mobile=False):
        """Emulate a screen of this size (CSS pixels)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height,
            "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile})

    def run(self, module, function, *args):
        """Call an exported function of a module of the page's origin and
        return what it resolves to; an exception there raises here."""
        r = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            import(arguments[0]).then((m) => m[arguments[1]](...arguments[2]))
                .then((value) => done({ value }),
                      (e) => done({ error: String(e && e.stack || e) }));
            """, module, function, list(args))
        if "error" in r:
            raise AssertionError("%s %s(): %s" % (module, function, r["error"]))
        return r.get("value")

    def console(self):
        """The browser console's entries since the last call."""
        return self.driver.get_log("browser")

    def quit(self):
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:
                pass
            self.driver = None
        shutil.rmtree(self.dir, ignore_errors=True)
