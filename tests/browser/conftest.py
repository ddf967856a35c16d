"""JupyterLab and Chromium for the browser test: started fresh, on 127.0.0.1, and always stopped.

`lab` starts `jupyter lab` from the running Python environment (the project's) on a free port with a random
token, with its own runtime, settings and workspaces folders under pytest's tmp dir, and stops it when the
module's tests end, pass or fail: `/api/shutdown` first (the server shuts its kernels down), then SIGTERM
and SIGKILL to its process group, then any process still naming its runtime folder (a kernel runs in its own
session, with its connection file there) is killed and reported as an error. `browser` launches Debian's
Chromium through Playwright by its executable path (Playwright's own browser download needs the network),
headless, in a fresh profile that Playwright makes and removes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / "build" / "browser"  # the parameterised notebook, screenshots and the server's log
CHROMIUM = Path(os.environ.get("ACTX_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = ("install Debian's Chromium with `apt-get install chromium` (as root, or with sudo), or set "
                "ACTX_CHROMIUM to a Chromium executable")
# Chromium as root in a container, offline: no sandbox, no GPU, and none of its background connections (they
# are refused by a closed network and slow everything down).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT = 120  # s: `jupyter lab` answers /api/status (about 5 s on an idle machine)
SERVER_STOP_TIMEOUT = 30  # s: after /api/shutdown, before SIGTERM and then SIGKILL
BROWSER_LAUNCH_TIMEOUT = 60  # s
# Lab settings for a predictable page: every cell in the DOM (no windowing), no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    log: Path

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(text[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_naming(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # the process ended meanwhile
                continue
            if text in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("jupyterlab")
    runtime, settings, workspaces = base / "runtime", base / "settings", base / "workspaces"
    for name, values in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    workspaces.mkdir()
    BUILD.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), secrets.token_hex(24)
    lab = Lab(f"http://127.0.0.1:{port}", token, BUILD / "jupyterlab.log")
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={REPO_ROOT}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={workspaces}", "--LabApp.extension_manager=readonly",
               "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0:  # CI and containers run as root; jupyter refuses that unless told
        command.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    with open(lab.log, "wb") as log:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with status {server.returncode} before answering; "
                                   f"its log ({lab.log}) ends:\n{lab.log_tail()}")
            try:
                lab.api("/api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab did not answer on {lab.url} within "
                                       f"{SERVER_START_TIMEOUT} s; its log ({lab.log}) ends:\n"
                                       f"{lab.log_tail()}") from None
                time.sleep(0.5)
        yield lab
    finally:
        _stop(server, lab, runtime)


def _stop(server: subprocess.Popen, lab: Lab, runtime: Path) -> None:
    if server.poll() is None:
        try:
            lab.api("/api/shutdown", method="POST")
            server.wait(SERVER_STOP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):  # not answering or not stopping: signals below
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            break
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            continue
    left = _processes_naming(str(runtime))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if left:
        raise RuntimeError(f"processes of the test's JupyterLab outlived its shutdown and were killed: "
                           f"pids {left}")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"the browser test needs Chromium at {CHROMIUM}: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS, timeout=BROWSER_LAUNCH_TIMEOUT * 1000)
        try:
            yield chromium
        finally:
            chromium.close()
