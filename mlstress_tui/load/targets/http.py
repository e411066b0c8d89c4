"""`--url http://host:port/features/{user_id}`: a service over HTTP, keep-alive connections in the worker's pool.

The client is libcurl through pycurl, chosen by CPU per request: it releases
the GIL for the whole exchange, so a worker's virtual users do not queue on
the interpreter while they wait for the service (measured here with 4
keep-alive connections: pycurl 56 µs a request; http.client 140 µs, urllib3
280 µs, httpx 630 µs, and the pure-Python clients got slower per request with
4 threads than with 1). One curl handle per pool slot keeps its connection
alive; pool wait is the wait for a handle, service the send to the full
response read. Headers and credentials never reach any output.

A 2xx is ok only when its body is what the service promises: when the
response's Content-Type says JSON (the service's own promise, as the reference
service's does), or always with `--expect-json`, a body that does not parse is
`bad_response` (`--no-expect-json`: bodies are not read for meaning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import pycurl

from mlstress_tui.errors import UsageError
from mlstress_tui.load.targets import LiveTarget, RequestTimeout, Target
from mlstress_tui.redaction import (ENCODE_HINT, has_bad_percent, password_of, scrub, secrets_in, unquoted_tokens,
                                    user_info)

PLACEHOLDER = "{user_id}"
METHODS = ("GET", "POST")
# Statuses that carry no body by definition: nothing to parse.
NO_BODY_STATUSES = (204, 205, 304)
# How long a connection may take to open (a request's whole deadline is --timeout).
CONNECT_TIMEOUT_S = 5.0
DEFAULT_TIMEOUT_S = 5.0
# libcurl's error numbers, by the kind a summary counts them as.
_KINDS = {
    pycurl.E_COULDNT_CONNECT: "connect_refused", pycurl.E_COULDNT_RESOLVE_HOST: "connect_refused",
    pycurl.E_OPERATION_TIMEDOUT: "timeout",
    pycurl.E_RECV_ERROR: "reset", pycurl.E_SEND_ERROR: "reset", pycurl.E_GOT_NOTHING: "reset",
    pycurl.E_PARTIAL_FILE: "reset",
    # CURLE_WEIRD_SERVER_REPLY (8): pycurl still names it after FTP.
    pycurl.E_FTP_WEIRD_SERVER_REPLY: "bad_response", pycurl.E_UNSUPPORTED_PROTOCOL: "bad_response",
}


def _discard(chunk: bytes) -> None:
    """libcurl's write callback: the bytes are read (and counted in service time), not kept."""


class HttpError(Exception):
    """A request that failed, by kind: connect_refused, reset, http_4xx/http_5xx, missing_user, bad_response."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.error_kind = kind


def _status_kind(status: int) -> str:
    return "missing_user" if status == 404 else f"http_{status // 100}xx"


def is_json_body(body: str | None) -> bool:
    """A body that is a JSON object or array (the ones `check` parses): sent as application/json."""
    return body is not None and body.lstrip()[:1] in ("{", "[")


def public_url(url: str) -> str:
    """The URL template without credentials or query values: what labels and summaries show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # `check` refuses such a URL; a label never raises, nor quotes what it cannot read
        return "(unreadable URL)"
    query = "?" + "&".join(f"{pair.split('=')[0]}=…" for pair in parts.query.split("&")) if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


@dataclass(frozen=True)
class HttpTarget(Target):
    kind: ClassVar[str] = "http"
    url: str = ""
    method: str = "GET"
    body: str | None = None
    headers: tuple[str, ...] = ()
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    expect_json: bool | None = None  # None: when the Content-Type says JSON; True: always; False: never
    timeout_s: float = DEFAULT_TIMEOUT_S  # the request deadline (--timeout): the pre-check waits as long

    @property
    def label(self) -> str:
        return public_url(self.url)

    def describe(self) -> dict[str, Any]:
        # Header names only: their values are often credentials.
        return {**super().describe(), "method": self.method,
                "headers": [header.split(":", 1)[0].strip() for header in self.headers],
                "expect_status": list(self.expect_status) or "2xx",
                "expect_json": {None: "when the Content-Type says so", True: "always", False: "never"}[self.expect_json]}

    def secrets(self) -> list[str]:
        """The URL's password, its query values and the header values, in every form a message could quote them."""
        queries = tuple(value for _, value in parse_qsl(self.url.partition("?")[2].partition("#")[0],
                                                           keep_blank_values=True) if PLACEHOLDER not in value)
        headers = tuple(word for header in self.headers for value in [header.partition(":")[2].strip()]
                        for word in (value, *value.split()))
        return secrets_in(self.url, values=queries + headers)

    def check(self) -> None:
        """A well-formed URL with {user_id}, a body that is still valid after substitution, and a service there."""
        hint = f"; {ENCODE_HINT}" if password_of(self.url) is not None else ""
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018  (a malformed port raises here)
        except ValueError as error:
            reason = scrub(unquoted_tokens(str(error)), self.secrets())
            raise UsageError(f"--url is not a valid URL ({reason}): write http://host:port/features/{PLACEHOLDER}"
                             f"{hint}") from None
        meant = user_info(self.url)
        parsed = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
        if meant != parsed or meant is not None and ("@" in meant or has_bad_percent(meant)):
            # A reserved character in the password moved part of it into the host, path, query or fragment.
            raise UsageError("--url can be read two ways: an '@' after its host, or a reserved character in its user "
                             f"or password, is not percent-encoded; write an '@' in the path or query as %40, and "
                             f"{ENCODE_HINT}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--url {self.label!r} must be http:// or https:// with a host, "
                             f"e.g. http://127.0.0.1:8000/features/{PLACEHOLDER}")
        if PLACEHOLDER not in self.url and (self.body is None or PLACEHOLDER not in self.body):
            raise UsageError(f"--url {self.label!r} has no {PLACEHOLDER}: put it in the path, the query or --body")
        if self.method not in METHODS:
            raise UsageError(f"--method {self.method!r}: use GET or POST")
        for header in self.headers:
            if ":" not in header or not header.split(":", 1)[0].strip():
                raise UsageError("a -H header is not 'Name: value' (its value is not shown here)")
        if self.body is not None and is_json_body(self.body):
            try:
                json.loads(self.body.replace(PLACEHOLDER, "USR00000001"))
            except json.JSONDecodeError as error:
                raise UsageError(f"--body is not valid JSON after {PLACEHOLDER} is substituted ({error.msg} "
                                 f"at column {error.colno})") from None
        self._preflight()

    def _preflight(self) -> None:
        """One request before the load, with the request's own deadline: a service that is not there is one line."""
        live = _LiveHttp(self, self.timeout_s)
        handle = live.connect()
        try:
            live.exchange(handle, "USR00000001")
        except pycurl.error as error:
            number = error.args[0]
            connected = handle.getinfo(pycurl.CONNECT_TIME) > 0
            if number == pycurl.E_COULDNT_CONNECT:
                raise UsageError(f"nothing listening at {self.label} (connection refused): start the service, or "
                                 "check --url") from None
            if number == pycurl.E_COULDNT_RESOLVE_HOST:
                raise UsageError(f"the host of {self.label} is not known here: check --url") from None
            if number == pycurl.E_OPERATION_TIMEDOUT and connected:
                raise UsageError(f"{self.label} answered nothing within {self.timeout_s:g} s (something is listening): "
                                 "raise --timeout for a service whose first answer is slow, or check the "
                                 "service") from None
            if number == pycurl.E_OPERATION_TIMEDOUT:
                raise UsageError(f"no connection to {self.label} within {min(self.timeout_s, CONNECT_TIMEOUT_S):g} s "
                                 "(the host did not accept one): check --url, the network or a firewall") from None
            if number == pycurl.E_URL_MALFORMAT:
                raise UsageError(f"--url {self.label!r} is not a URL libcurl accepts: check it; "
                                 f"{ENCODE_HINT}") from None
        finally:
            live.close(handle)

    def open(self, timeout_s: float) -> LiveTarget:
        return _LiveHttp(self, timeout_s)


class _LiveHttp(LiveTarget):
    def __init__(self, target: HttpTarget, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.prefix, _, self.suffix = target.url.partition(PLACEHOLDER)
        self.has_placeholder = PLACEHOLDER in target.url
        self.expect = set(target.expect_status)
        self.secrets = target.secrets()
        self.headers = list(target.headers)
        named = {header.partition(":")[0].strip().lower() for header in target.headers}
        # libcurl labels a POSTFIELDS body application/x-www-form-urlencoded unless told otherwise.
        if is_json_body(target.body) and "content-type" not in named:
            self.headers.append("Content-Type: application/json")

    def connect(self) -> pycurl.Curl:
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for name lookups
        handle.setopt(pycurl.TCP_NODELAY, 1)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(int(min(self.timeout_s, CONNECT_TIMEOUT_S) * 1000), 1))
        # Every request's deadline is --timeout from its send, in both load models: set once, not per request.
        handle.setopt(pycurl.TIMEOUT_MS, max(int(self.timeout_s * 1000), 1))
        # The body is read to its end (service time is send -> full response); kept only to check it is JSON.
        if self.target.expect_json is False:
            handle.setopt(pycurl.WRITEFUNCTION, _discard)
        else:
            handle.body = bytearray()
            handle.setopt(pycurl.WRITEFUNCTION, handle.body.extend)
        if self.headers:
            handle.setopt(pycurl.HTTPHEADER, self.headers)
        if self.target.method == "POST":
            handle.setopt(pycurl.POST, 1)
        return handle

    def exchange(self, handle: pycurl.Curl, user_id: str) -> int:
        """Send the request for `user_id` and read the whole response; its status, or pycurl.error."""
        url = self.prefix + quote(user_id, safe="") + self.suffix if self.has_placeholder else self.target.url
        handle.setopt(pycurl.URL, url)
        if self.target.body is not None:
            handle.setopt(pycurl.POSTFIELDS, self.target.body.replace(PLACEHOLDER, user_id))
        body = getattr(handle, "body", None)
        if body is not None:
            body.clear()
        handle.perform()
        return int(handle.getinfo(pycurl.RESPONSE_CODE))

    def request(self, handle: pycurl.Curl, user_id: str, deadline_ns: int) -> None:
        try:
            status = self.exchange(handle, user_id)
        except pycurl.error as error:
            kind = _KINDS.get(error.args[0], "bad_response")
            if kind == "timeout":
                raise RequestTimeout() from None
            raise HttpError(kind, scrub(f"curl error {error.args[0]}: {error.args[1]}", self.secrets)[:200]) from None
        if self.expect and status in self.expect or not self.expect and 200 <= status < 300:
            self._check_body(handle, status)
            return
        raise HttpError(_status_kind(status), f"HTTP {status} for {user_id}")

    def _check_body(self, handle: pycurl.Curl, status: int) -> None:
        """A body promised as JSON (by its Content-Type, or by --expect-json) that does not parse is bad_response."""
        if self.target.expect_json is False or status in NO_BODY_STATUSES:
            return
        if not self.target.expect_json and not _says_json(handle.getinfo(pycurl.CONTENT_TYPE)):
            return
        try:
            json.loads(handle.body)
        except ValueError as error:
            said = getattr(error, "msg", None) or type(error).__name__
            raise HttpError("bad_response", f"HTTP {status} with a body that is not JSON ({said}, "
                                            f"{len(handle.body)} bytes)") from None

    def close(self, handle: pycurl.Curl) -> None:
        handle.close()


def _says_json(content_type: str | None) -> bool:
    """application/json, or any type with a +json suffix (application/problem+json), whatever its parameters."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_expect_status(text: str | None) -> tuple[int, ...]:
    """`--expect-status 200,204` (empty: any 2xx)."""
    if not text or text == "2xx":
        return ()
    try:
        codes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--expect-status {text!r}: give status codes such as 200 or 200,204 (or 2xx)") from None
    if any(not 100 <= code <= 599 for code in codes):
        raise UsageError(f"--expect-status {text!r}: status codes are 100 to 599")
    return codes
