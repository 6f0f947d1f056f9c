"""Drives a real browser (headless Chromium, through the DevTools protocol)
through pbxd's web console for crates/pbxd/tests/stock_apps.rs: log in,
read the page, press the first button of the first row of class ROW
(`missed`: a missed call's number, click-to-dial in the session; `live`:
an administrator's "End call"), read what came back. Saves the pages as
PREFIX.html and PREFIX-after.html, with PNG screenshots, in OUTDIR.

    drive.py CHROMIUM BASE_URL NAME PASSWORD OUTDIR PREFIX ROW

The console itself has no JavaScript: the driver fills and submits its
forms as a user would, through the browser."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def main():
    chromium, base, name, password, outdir, prefix, row = sys.argv[1:8]
    os.makedirs(outdir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="pbxd-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1000,800", "--user-data-dir=" + profile, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = debugging_port(profile)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(target for target in targets if target.get("type") == "page")
        tab = Tab(page["webSocketDebuggerUrl"])
        tab.call("Page.enable")
        tab.navigate(base + "/login")
        tab.evaluate(
            "document.querySelector('input[name=name]').value = %s;"
            "document.querySelector('input[name=password]').value = %s;"
            "document.querySelector('form').submit();" % (json.dumps(name), json.dumps(password)))
        tab.wait_load()
        tab.save(outdir, prefix)
        clicked = tab.evaluate(
            "(() => { const b = document.querySelector('tr.%s button');"
            " if (!b) return false; b.click(); return true; })()" % row)
        if clicked:
            tab.wait_load()
            tab.save(outdir, prefix + "-after")
    finally:
        browser.kill()
        browser.wait()


def debugging_port(profile):
    path = os.path.join(profile, "DevToolsActivePort")
    for _ in range(200):
        if os.path.exists(path):
            with open(path) as file:
                first = file.readline().strip()
            if first:
                return int(first)
        time.sleep(0.05)
    raise SystemExit("chromium did not start its DevTools endpoint")


class Tab:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=15)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        sent = self.next_id
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise SystemExit(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_load(self):
        deadline = time.time() + 15
        while time.time() < deadline:
            for event in self.events:
                if event.get("method") == "Page.loadEventFired":
                    self.events.clear()
                    time.sleep(0.2)
                    return
            self.events.append(json.loads(self.socket.recv()))
        raise SystemExit("the page did not load")

    def navigate(self, url):
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_load()

    def evaluate(self, script):
        self.events.clear()
        result = self.call("Runtime.evaluate", expression=script, returnByValue=True)
        return result.get("result", {}).get("value")

    def save(self, outdir, name):
        html = self.evaluate("document.documentElement.outerHTML")
        with open(os.path.join(outdir, name + ".html"), "w") as file:
            file.write(html)
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(os.path.join(outdir, name + ".png"), "wb") as file:
            file.write(base64.b64decode(shot["data"]))


if __name__ == "__main__":
    main()
