"""A minimal Language Server Protocol client, to drive the YAML language server
the way an editor does: JSON-RPC messages framed by `Content-Length` headers
over the server's stdin/stdout.

It answers the server's requests (`workspace/configuration` with the settings
it was given, anything else with null) and keeps the diagnostics the server
publishes for each document.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "editor" / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


class LanguageServer:
    def __init__(self, argv: list[str], *, root: Path, settings: dict[str, Any], timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue[dict | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict]] = {}
        self.opened: set[str] = set()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.request("initialize", {
            "processId": None, "rootUri": root.as_uri(), "workspaceFolders": [{"uri": root.as_uri(), "name": "w"}],
            "capabilities": {"workspace": {"configuration": True},
                             "textDocument": {"publishDiagnostics": {"relatedInformation": False}}},
        })
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": settings})

    # --- framing ----------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.messages.put(json.loads(stream.read(length)))

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    # --- messages -----------------------------------------------------------------------

    def _next(self, deadline: float) -> dict:
        try:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("the language server did not answer in time") from None
        if message is None:
            raise EOFError(f"the language server exited: {self.proc.stderr.read().decode(errors='replace')}")
        if "method" in message and "id" in message:  # a request from the server
            self._send({"id": message["id"], "result": self._answer(message["method"], message.get("params"))})
        elif message.get("method") == "textDocument/publishDiagnostics":
            self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
        return message

    def _answer(self, method: str, params: Any) -> Any:
        if method == "workspace/configuration":
            return [self.settings.get(item.get("section", ""), None) for item in params["items"]]
        return None

    def request(self, method: str, params: Any) -> Any:
        self._next_id += 1
        my_id = self._next_id
        self._send({"id": my_id, "method": method, "params": params})
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._next(deadline)
            if message.get("id") == my_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def check(self, path: Path) -> list[dict]:
        """Open `path` as an editor does and return the first diagnostics published for it."""
        return self.check_all([path])[path]

    def check_all(self, paths: list[Path]) -> dict[Path, list[dict]]:
        """Open every path, then collect the first diagnostics published for each.
        Each path once per server: closing a document publishes an empty list for it."""
        uris = {path.as_uri(): path for path in paths}
        for uri, path in uris.items():
            if uri in self.opened:
                raise ValueError(f"{path} was opened already")
            self.opened.add(uri)
            self.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "yaml", "version": 1, "text": path.read_text(encoding="utf-8")}})
        deadline = time.monotonic() + self.timeout_s
        while not all(uri in self.diagnostics for uri in uris):
            self._next(deadline)
        return {path: self.diagnostics[uri] for uri, path in uris.items()}

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except (OSError, TimeoutError, EOFError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                stream.close()
