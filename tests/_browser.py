"""A real headless Chromium (Debian's, installed by scripts/install_chromium.sh) for page tests,
and a PNG decoder (stdlib zlib) to check what the screenshots show."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

from devstack._process import run_script

REPO = Path(__file__).resolve().parents[1]


def chromium_binary() -> str:
    """The Chromium path printed by scripts/install_chromium.sh (which installs it if needed)."""
    return str(run_script(REPO / "scripts" / "install_chromium.sh", what="Chromium", timeout=600))


def run_chromium(binary: str, profile: Path, *args: str, timeout: float = 60.0) -> str:
    """Run headless Chromium with its own profile; its stdout. Stopped by its PID on timeout."""
    command = [
        binary,
        "--headless",
        "--no-sandbox",  # root in the test container
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group Chromium's own PID leads
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {err.decode()[-2000:]}")
    return out.decode("utf-8", errors="replace")


def screenshot(binary: str, page: Path, png: Path, *, width: int, height: int) -> Image:
    """The page as Chromium renders it in a ``width`` x ``height`` window."""
    run_chromium(
        binary,
        png.parent / f"{png.stem}-profile",
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    )
    return decode_png(png.read_bytes())


def dump_dom(binary: str, url: str, profile: Path) -> str:
    """The DOM after the page's scripts ran, serialised."""
    return run_chromium(binary, profile, "--virtual-time-budget=2000", "--dump-dom", url)


class Image:
    """Decoded 8-bit RGB(A) pixels; ``pixel(x, y)`` is ``(r, g, b)``."""

    def __init__(self, width: int, height: int, channels: int, rows: list[bytes]) -> None:
        self.width, self.height, self.channels, self.rows = width, height, channels, rows

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = x * self.channels
        row = self.rows[y]
        return row[i], row[i + 1], row[i + 2]


def decode_png(data: bytes) -> Image:
    """Decode a non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, {interlace=}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + near) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``"#1f77b4"`` as ``(31, 119, 180)``."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


Run = tuple[int, int, int]
"""``(x, first y, length)`` of a vertical run of one colour."""


def vertical_runs(image: Image, colour: str, *, tolerance: int = 8, step: int = 2) -> list[Run]:
    """The vertical runs of ``colour`` in every ``step``-th column.

    A filled box of height h gives runs of about h: the map's nodes and the waterfall's bars
    are told apart by their heights.
    """
    want = hex_rgb(colour)
    runs: list[Run] = []
    for x in range(0, image.width, step):
        run = 0
        for y in range(image.height):
            r, g, b = image.pixel(x, y)
            if (
                abs(r - want[0]) <= tolerance
                and abs(g - want[1]) <= tolerance
                and abs(b - want[2]) <= tolerance
            ):
                run += 1
            elif run:
                runs.append((x, y - run, run))
                run = 0
        if run:
            runs.append((x, image.height - run, run))
    return runs


class DevToolsPipe:
    """A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    commands on its fd 3, answers on its fd 4, each a JSON message ended by a NUL byte), so a
    test can type into a page and read what its scripts made of it. Stopped by its PID."""

    def __init__(self, binary: str, profile: Path, *, width: int = 1280, height: int = 900) -> None:
        to_child, self._to_chromium = os.pipe()
        self._from_chromium, from_child = os.pipe()

        def wire() -> None:  # in the child, before exec: its fds 3 and 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self._proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # root in the test container
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--force-device-scale-factor=1",
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,
            start_new_session=True,
        )
        os.close(to_child)
        os.close(from_child)
        self._next_id = 0
        self._buffer = b""
        self.width, self.height = width, height

    def send(self, method: str, params: dict[str, object] | None = None, session: str = "") -> Any:
        """Send one command and return its result (events before the answer are skipped)."""
        self._next_id += 1
        message: dict[str, object] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chromium, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def open(self, url: str) -> str:
        """Open ``url`` in a new tab; its session id once the page has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = str(
            self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        )
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        self.send("Page.navigate", {"url": url}, session)
        self.evaluate(session, until("document.readyState === 'complete'", "true"))
        return session

    def evaluate(self, session: str, expression: str) -> Any:
        """The value of ``expression`` in the page (awaited when it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_text(self, session: str, text: str) -> None:
        """Type ``text`` into the focused element, as keyboard input."""
        self.send("Input.insertText", {"text": text}, session)

    def screenshot(self, session: str, png: Path) -> Image:
        """Save the page as rendered to ``png`` and decode it."""
        data = base64.b64decode(
            self.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
        )
        png.write_bytes(data)
        return decode_png(data)

    def close(self) -> None:
        """Stop Chromium (its process group, by its PID) and close the pipes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=30)
        os.close(self._to_chromium)
        os.close(self._from_chromium)


def until(condition: str, value: str, timeout_ms: int = 20_000) -> str:
    """A page expression: a promise of ``value`` once ``condition`` holds (checked every 50 ms),
    rejected naming the condition after ``timeout_ms``."""
    return (
        "new Promise((resolve, reject) => { const start = Date.now(); (function check() {"
        f" if ({condition}) resolve({value});"
        f" else if (Date.now() - start > {timeout_ms})"
        f" reject(new Error({json.dumps('timed out waiting for ' + condition)}));"
        " else setTimeout(check, 50); })(); })"
    )
