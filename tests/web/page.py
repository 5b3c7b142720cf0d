"""The chat page (web/) as a test sees it through selenium: waiting,
reading the log, the members and the views, typing, logging in. Shared by
tests/web/test_web.py (against a fake chat server) and
tests/web/test_web_server.py (against asyncchatd).  Import it once
browser.unavailable() has said selenium is there."""

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20.0             # for anything the page or a server does


def wait(d, pred, what, timeout=WAIT):
    """Wait for pred(driver) to be true (returns its value)."""
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.05).until(
            lambda drv: pred(drv))
    except TimeoutException:
        raise AssertionError("timed out waiting for " + what)


def log_lines(d):
    """The lines of the log shown: (classes, time text, time attr, from,
    text) for each."""
    return d.execute_script("""
        return [...document.querySelectorAll('#log > li')].map((li) => {
            const q = (s) => li.querySelector(s);
            return [li.className, q('time') ? q('time').textContent : null,
                    q('time') ? q('time').dateTime : null,
                    q('.from') ? q('.from').textContent : null,
                    q('.text') ? q('.text').textContent : null];
        });""")


def texts(d):
    return [x[4] for x in log_lines(d)]


def wait_line(d, text, what=None):
    """Wait for a log line whose text is exactly text; return it."""
    def find(drv):
        for line in log_lines(drv):
            if line[4] == text:
                return line
        return False
    return wait(d, find, what or "the line %r" % text)


def members(d):
    return d.execute_script(
        "return [...document.querySelectorAll('#members li')]"
        ".map((li) => li.textContent);")


def views(d):
    """The view buttons: (label text, aria-current)."""
    return d.execute_script("""
        return [...document.querySelectorAll('#views button')].map((b) =>
            [b.textContent, b.getAttribute('aria-current')]);""")


def click_view(d, label):
    for b in d.find_elements(By.CSS_SELECTOR, "#views button"):
        if b.text.split(" (")[0] == label:
            b.click()
            return
    raise AssertionError("no view %r in %r" % (label, views(d)))


def type_line(d, text):
    """Type a line into the message input and press Enter."""
    box = d.find_element(By.ID, "input")
    box.send_keys(text + Keys.ENTER)


def severe(entries):
    return [e["message"] for e in entries if e.get("level") == "SEVERE"]


def fresh_page(d, url, blank="/__test__/blank.html"):
    """Open the page as a new visitor would (nothing kept from a case
    before in this tab's sessionStorage); blank is a document of the
    page's origin that does not start the chat."""
    d.get(url + blank)
    d.execute_script("sessionStorage.clear()")
    d.get(url + "/")


def login(d, url, nick, key=None, blank="/__test__/blank.html"):
    """Open the page afresh and log in."""
    fresh_page(d, url, blank)
    wait(d, lambda drv: drv.find_element(By.ID, "login-nick").is_displayed(),
         "the login prompt")
    n = d.find_element(By.ID, "login-nick")
    n.clear()
    if key is not None:
        k = d.find_element(By.ID, "login-key")
        k.clear()
        k.send_keys(key)
    n.send_keys(nick + Keys.ENTER)
