"""Take a screenshot of the running demo with headless Chromium: `python -m demo.screenshot`.

Starts the app in-process on a free port (shipped checkpoints, or --checkpoints DIR),
opens it in headless Chromium, clicks an example so a real result is on the page, waits
for it, and saves a compressed full-page PNG (demo/screenshot.png by default).

Chromium is driven over the DevTools protocol through a pipe (--remote-debugging-pipe),
so nothing beyond the standard library and a Chromium binary is needed
(Debian: `apt-get install -y chromium`).  With --no-click it only loads the page.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage"]


class Chromium:
    """Minimal DevTools-protocol client over Chromium's --remote-debugging-pipe (fds 3/4)."""

    def __init__(self, binary: str, width: int, height: int):
        self.profile = tempfile.mkdtemp(prefix="facesr-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire():  # runs in the child before exec: the pipe ends become fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            if time.time() > deadline:
                raise TimeoutError(f"Chromium did not answer {method}")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk

    def open(self, url: str, width: int, height: int) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str, timeout: float = 60.0):
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")

    def upload(self, selector: str, path: str | os.PathLike) -> None:
        """Put a file into the page's file input matching `selector`, as a person choosing it."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise RuntimeError(f"no element matches {selector!r}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(path).resolve())]})

    def wait_for(self, condition: str, timeout: float = 60.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(f"Boolean({condition})"):
                return True
            time.sleep(0.25)
        return False

    def screenshot(self, width: int) -> bytes:
        height = int(self.js("Math.ceil(document.documentElement.scrollHeight)") or 1000)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.5)
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def compress_png(png: bytes, out: Path, max_bytes: int = 300_000) -> int:
    """Save as an optimised palette PNG (lossless enough for a UI), shrinking if still too big."""
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGB")
    for width in (im.width, 1200, 1000, 800):
        small = im if width == im.width else im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        q = small.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        q.save(buf, format="PNG", optimize=True)
        if buf.tell() <= max_bytes:
            break
    out.write_bytes(buf.getvalue())
    return buf.tell()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE / "screenshot.png"))
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped ones)")
    p.add_argument("--example", default="Face, bicubic", help="label of the example to click")
    p.add_argument("--no-click", action="store_true", help="only load the page")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                   or shutil.which("google-chrome"))
    args = p.parse_args(argv)
    if not args.chromium:
        raise SystemExit("no Chromium found: install it (Debian: apt-get install -y chromium) or pass --chromium")

    import demo

    app = demo.build_app(checkpoints_dir=args.checkpoints)
    _, url, _ = demo.launch(app, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    browser = Chromium(args.chromium, args.width, args.height)
    try:
        browser.open(url, args.width, args.height)
        if not browser.wait_for("document.querySelector('#run')", timeout=90):
            raise SystemExit("the page did not load")
        time.sleep(1.0)
        if not args.no_click:
            label = json.dumps(args.example)
            clicked = browser.js(f"""(() => {{
                const el = [...document.querySelectorAll('[role=tab]'), ...document.querySelectorAll('button, td, div, span')]
                    .find(e => e.children.length === 0 && e.offsetParent !== null && e.textContent.trim() === {label});
                if (!el) return false;
                (el.closest('button') || el).click();
                return true; }})()""")
            if not clicked:
                raise SystemExit(f"no example labelled {args.example!r} on the page")
            done = browser.wait_for("document.querySelector('#status').innerText.includes(' px in ')", timeout=120)
            if not done:
                print("warning: no result appeared within 120 s; taking the screenshot anyway")
            time.sleep(1.5)  # let images finish decoding
        size = compress_png(browser.screenshot(args.width), Path(args.out))
        print(f"saved {args.out} ({size / 1024:.0f} KB)")
    finally:
        browser.close()
        app.close()
    return Path(args.out)


if __name__ == "__main__":
    main()
