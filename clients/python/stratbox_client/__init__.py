"""A client for ``stratbox serve``: run, check and batch untrusted Python strategies.

Standard library only. Results are typed (dataclasses); fields added to the outcome by
newer servers are ignored, so an older client keeps working.

    from stratbox_client import Client

    client = Client("http://127.0.0.1:8750")
    outcome = client.run("print(sum(range(10)))")
    assert outcome.ok and outcome.stdout == "45\\n"
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

__all__ = [
    "Busy",
    "CheckResult",
    "Client",
    "Outcome",
    "Request",
    "Route",
    "StratboxError",
    "Usage",
    "Violation",
]

DEFAULT_URL = "http://127.0.0.1:8750"


class StratboxError(Exception):
    """The server answered with an error that is not an outcome (401, 5xx, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Busy(StratboxError):
    """429 (the server is full) or 503 (it is shutting down): try again later."""

    def __init__(self, status: int, message: str, retry_after: float) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` has fields for."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class Violation:
    """Why the validator refused a strategy."""

    rule: str
    line: int
    col: int
    message: str
    hint: str = ""
    text: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Violation:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Route:
    """Which backend runs a strategy, and why."""

    backend: str
    why: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Route | None:
        return None if data is None else cls(**_known(cls, data))


@dataclass(frozen=True)
class Usage:
    """What a run consumed."""

    wall_ms: float = 0.0
    fuel: int = 0
    memory_peak_bytes: int = 0


@dataclass(frozen=True)
class Outcome:
    """The account of one run (``stratbox schema outcome``)."""

    status: str
    id: str | None = None
    reason: str | None = None
    message: str | None = None
    backend: str | None = None
    python: str | None = None
    route: Route | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: Mapping[str, bool] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()
    usage: Usage = Usage()
    policy: str = ""
    schema_version: int = 1
    cause: str | None = None

    @property
    def ok(self) -> bool:
        """The strategy ran and exited 0."""
        return self.status == "ok"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        known = _known(cls, data)
        known["route"] = Route.from_json(data.get("route"))
        known["violations"] = tuple(Violation.from_json(v) for v in data.get("violations", ()))
        known["usage"] = Usage(**_known(Usage, data.get("usage") or {}))
        return cls(**known)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of ``check``: ``ok`` (it would run, on ``route``) or ``rejected``."""

    status: str
    id: str | None = None
    route: Route | None = None
    violations: tuple[Violation, ...] = ()
    policy: str = ""
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        known = _known(cls, data)
        known["route"] = Route.from_json(data.get("route"))
        known["violations"] = tuple(Violation.from_json(v) for v in data.get("violations", ()))
        return cls(**known)


@dataclass(frozen=True)
class Request:
    """One strategy to run (``stratbox schema request``). Give ``source`` or ``path``;
    ``path`` and ``input_path`` need a server started with ``--files-root``."""

    source: str | None = None
    path: str | None = None
    input: Any = None
    input_path: str | None = None
    filename: str | None = None
    backend: str | None = None
    profile: str | None = None
    #: Limits set over the profile's, keyed as a profile's ``[limits]`` table
    #: (``{"wall-time": "2s", "memory": "64MiB"}``); the server refuses looser ones.
    limits: Mapping[str, Any] | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


class Client:
    """A connection to one ``stratbox serve``. ``token`` (or ``STRATBOX_TOKEN``) is sent as
    a bearer token; ``timeout`` bounds each request in seconds."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 120.0):
        self.url = urllib.parse.urlsplit(url or os.environ.get("STRATBOX_URL") or DEFAULT_URL)
        if self.url.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.token = token if token is not None else os.environ.get("STRATBOX_TOKEN")
        self.timeout = timeout

    def run(self, source: str | None = None, **fields: Any) -> Outcome:
        """Runs one strategy and returns its outcome. A request the server refuses
        (a bad field, a host file it may not read) comes back as an ``invalid`` outcome."""
        data = self._post_json("/v1/run", Request(source=source, **fields).to_json())
        return Outcome.from_json(data)

    def check(self, source: str | None = None, **fields: Any) -> CheckResult:
        """Validates and routes one strategy without running it."""
        data = self._post_json("/v1/check", Request(source=source, **fields).to_json())
        return CheckResult.from_json(data)

    def batch(self, requests: Iterable[Request | Mapping[str, Any]]) -> Iterator[Outcome]:
        """Runs many strategies; yields outcomes as the server finishes them (completion
        order: match them by ``id``; a request without one gets its line number)."""
        lines = []
        for request in requests:
            body = request.to_json() if isinstance(request, Request) else dict(request)
            lines.append(json.dumps(body))
        payload = ("\n".join(lines) + "\n").encode()
        connection, response = self._send("POST", "/v1/batch", payload, "application/jsonl")
        try:
            while True:
                line = response.readline()
                if not line:
                    break
                if line.strip():
                    yield Outcome.from_json(json.loads(line))
        finally:
            connection.close()

    def health(self) -> bool:
        """Whether the server answers ``/v1/health``."""
        connection, response = self._send("GET", "/v1/health", None, None)
        try:
            return json.loads(response.read()).get("status") == "ok"
        finally:
            connection.close()

    def _post_json(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        connection, response = self._send("POST", path, json.dumps(body).encode(), "application/json")
        try:
            return json.loads(response.read())
        finally:
            connection.close()

    def _send(self, method: str, path: str, body: bytes | None, content_type: str | None):
        """Sends a request; returns the connection and a successful (or outcome-bearing
        4xx) response, raising for anything else."""
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        connection = cls(self.url.hostname, self.url.port, timeout=self.timeout)
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        prefix = self.url.path.rstrip("/")
        try:
            connection.request(method, prefix + path, body=body, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        if response.status == 200:
            return connection, response
        text = response.read().decode(errors="replace")
        connection.close()
        if response.status in (400, 403):
            # A refused request: the body is its `invalid` outcome.
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("status") == "invalid":
                return _Replay(), _Replay(text)
        message = text
        try:
            message = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            pass
        if response.status in (429, 503):
            retry = response.getheader("Retry-After") or "1"
            raise Busy(response.status, message, float(retry))
        raise StratboxError(response.status, message)


class _Replay:
    """A response already read (and its closed connection)."""

    def __init__(self, text: str = "") -> None:
        self._text = text.encode()

    def read(self) -> bytes:
        return self._text

    def close(self) -> None:
        pass
