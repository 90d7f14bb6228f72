"""The decision log: every decision as one JSON line, appended to a file.

Records are buffered and written by a background thread every ``flush`` seconds (or at once when
``flush`` is 0), each batch of whole lines in one ``write`` call on a file opened with
``O_APPEND``. So a crash, even ``kill -9``, loses at most the last interval and never leaves half
a line behind, and several worker processes can share one file.

Rotation is safe with both castgate's own size limit and an external ``logrotate``: a writer that
finds its file renamed or deleted reopens the path before writing; a size rotation is done under
an ``flock`` on ``<log>.lock``, so of several processes exactly one renames the file.

The record format is documented in docs/operating.md; ``castgate replay`` reads it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from castgate.events import Decision, Event
from castgate.logs import iso_time

_log = logging.getLogger(__name__)

#: What replaces a secret value in the log.
REDACTED = "<redacted>"

#: A param or raw field whose name contains one of these holds a secret (token, streamKey,
#: wmsAuthSign, password, Authorization, ...). Matching is by substring so vendor spellings are
#: caught without a list per vendor; an over-redacted harmless field costs little.
SECRET_NAME_PARTS = ("token", "secret", "pass", "key", "sign", "sig", "auth", "jwt", "credential")

#: Records waiting to be written beyond this are dropped (and counted): a log that cannot be
#: written must not take the server's memory with it.
MAX_PENDING = 100_000


class Redactor:
    """Replaces secret values in an event's data before it is logged.

    ``fields`` are dotted paths the operator names (``stream``, ``params.user``, ``raw.url``);
    every ``params`` or ``raw`` key whose name looks secret is redacted without being named.
    """

    def __init__(self, fields: Iterable[str] = ()) -> None:
        self.fields = frozenset(fields)

    def summary(self, event: Event) -> dict[str, Any]:
        """The event's main fields for the process log, scrubbed exactly as :meth:`event` would
        scrub them, and of its params only the names (values carry keys and tokens, and names
        are what debugging a policy needs).

        Cheaper than :meth:`event`: nothing is copied and only three values are scrubbed, so a
        server without a decision-log file pays only this per decision.
        """
        secrets = {
            getattr(event, name)
            for name in _TOP_LEVEL_FIELDS
            if name in self.fields and getattr(event, name)
        }
        self._collect(event.params, "params", secrets)
        self._collect(event.raw, "raw", secrets)
        scrub = _longest_first(secrets)

        def shown(name: str) -> str:
            value: str = getattr(event, name)
            return REDACTED if name in self.fields and value else _scrubbed(value, scrub)

        return {
            "app": shown("app"),
            "stream": shown("stream"),
            "client_ip": _scrubbed(event.client_ip, scrub),
            "params": sorted(event.params),
        }

    def _collect(self, value: Any, path: str, secrets: set[str]) -> None:
        """Adds the values :meth:`_clean` would redact under ``value`` to ``secrets``."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if _looks_secret(str(key)) or (self.fields and f"{path}.{key}" in self.fields):
                    secrets.update(_texts(item))
                # Most values are text: skipping them here, before the costly Mapping check
                # (an ABC), halves the walk.
                elif not isinstance(item, str):
                    self._collect(item, f"{path}.{key}", secrets)
        elif isinstance(value, list):
            for item in value:
                self._collect(item, path, secrets)

    def event(self, event: Event) -> tuple[dict[str, Any], list[str]]:
        """The event as JSON data with secrets replaced, and the paths that were replaced.

        A secret also travels inside other fields (a token in ``raw.tcurl``, a stream key in
        the session id or a URL), so every value redacted by name is then removed wherever else
        it appears, and so is the value of every secret-named query argument in any text.
        """
        data = event.to_dict()
        redacted: list[str] = []
        secrets: set[str] = set()
        for name in _TOP_LEVEL_FIELDS:
            if name in self.fields and data[name]:
                secrets.add(data[name])
                data[name] = REDACTED
                redacted.append(name)
        for section in ("params", "raw"):
            data[section] = self._clean(data[section], section, redacted, secrets)
        return _scrubbed(data, _longest_first(secrets)), redacted

    def _clean(self, value: Any, path: str, redacted: list[str], secrets: set[str]) -> Any:
        if isinstance(value, Mapping):
            cleaned = {}
            for key, item in value.items():
                child = f"{path}.{key}"
                if child in self.fields or _looks_secret(str(key)):
                    secrets.update(_texts(item))
                    cleaned[key] = REDACTED
                    redacted.append(child)
                else:
                    cleaned[key] = self._clean(item, child, redacted, secrets)
            return cleaned
        if isinstance(value, list):
            return [self._clean(item, path, redacted, secrets) for item in value]
        return value


#: The event's own text fields an operator may name for redaction (params and raw are walked).
_TOP_LEVEL_FIELDS = ("app", "stream", "session_id", "node")

#: Redacted values shorter than this are not hunted for in other fields: "1" or "on" would
#: blank half the record, and are no secret anyway.
MIN_SECRET_LENGTH = 4

#: ``name=value`` in a query string or form, where the name looks secret.
_SECRET_ARGUMENT = re.compile(
    r"(?i)(?P<name>[^=&;?#\s/]*(?:" + "|".join(SECRET_NAME_PARTS) + r")[^=&;?#\s/]*)="
    r"(?P<value>[^&;#\s]+)"
)


def _longest_first(secrets: set[str]) -> list[str]:
    # Longest first, so a secret containing a shorter one is removed whole.
    return sorted((each for each in secrets if len(each) >= MIN_SECRET_LENGTH), key=len)[::-1]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        if "=" in value:
            value = _SECRET_ARGUMENT.sub(lambda found: f"{found['name']}={REDACTED}", value)
        return value
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    return value


# Field names repeat from request to request; the bound keeps made-up names from growing it.
@functools.lru_cache(maxsize=4096)
def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def decision_record(
    event: Event,
    decision: Decision,
    *,
    status: int,
    latency_ms: float,
    policy: str,
    redactor: Redactor,
    malformed: bool = False,
) -> dict[str, Any]:
    """One decision as the decision log stores it (keys in docs/operating.md)."""
    record = decision_header(
        event, decision, status=status, latency_ms=latency_ms, policy=policy, malformed=malformed
    )
    return with_event(record, event, decision, redactor)


def decision_header(
    event: Event,
    decision: Decision,
    *,
    status: int,
    latency_ms: float,
    policy: str,
    malformed: bool = False,
) -> dict[str, Any]:
    """What every record of a decision starts with, in the decision log and in the process log:
    when, what was asked, what was decided and by which rule, how it was answered."""
    header: dict[str, Any] = {
        "time": iso_time(event.time),
        "vendor": event.vendor,
        "action": event.action,
        "effect": decision.effect.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "policy": policy,
    }
    if decision.failed:
        header["failed"] = True
    if decision.flagged:
        header["flagged"] = True
    if malformed:
        header["malformed"] = True
    return header


def with_event(
    header: dict[str, Any], event: Event, decision: Decision, redactor: Redactor
) -> dict[str, Any]:
    """The decision-log record: ``header`` and the whole event, redacted, and any trace."""
    event_data, redacted = redactor.event(event)
    record = dict(header)
    if redacted:
        record["redacted"] = redacted
    record["event"] = event_data
    if decision.trace is not None:
        record["trace"] = decision.to_dict()["trace"]
    return record


class DecisionLog:
    """Appends records to ``path``; see the module docstring for the guarantees."""

    def __init__(
        self,
        path: Path,
        *,
        flush: float = 1.0,
        fsync: bool = False,
        max_bytes: int = 0,
        keep: int = 10,
        lost: Callable[[int], object] = lambda count: None,
    ) -> None:
        self.path = path
        self.flush_interval = flush
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.keep = keep
        #: Told how many records were lost each time some are: dropped because writing fell
        #: behind, or in a write that failed.
        self.on_lost = lost
        # A failed write may have left part of a line; the next batch starts on a new line.
        self._torn = False
        self._pending: deque[bytes] = deque()
        # _lock guards the pending records and is held only to swap them, so a request never
        # waits for a write or an fsync; _writing keeps writes (and rotations) one at a time.
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._fd = self._open()
        self._writer: threading.Thread | None = None
        #: Where writers of this log take turns to rotate it; hidden, so a shell glob for the
        #: log and its rotations (``decisions.log*``) does not pick it up.
        self.lock_path = path.with_name(f".{path.name}.lock")

    def start(self) -> None:
        """Start the background writer (not needed when ``flush`` is 0)."""
        if self.flush_interval > 0 and self._writer is None:
            self._writer = threading.Thread(
                target=self._write_periodically, name="castgate-decision-log", daemon=True
            )
            self._writer.start()

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
        # errors="surrogatepass": vendor data may hold lone surrogates; the line must still go out.
        data = line.encode("utf-8", errors="surrogatepass")
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self.on_lost(1)
            self._pending.append(data)
        if self.flush_interval == 0:
            self.flush()

    def flush(self) -> None:
        """Write what is pending now, in one ``write`` call."""
        with self._writing:
            with self._lock:
                if not self._pending:
                    return
                batch = b"".join(self._pending)
                count = len(self._pending)
                self._pending.clear()
            if self._torn:
                batch = b"\n" + batch
            writing = False
            try:
                self._reopen_if_moved()
                writing = True  # from here on, part of the batch may reach the file
                _write_all(self._fd, batch)
                self._torn = False
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as error:
                self._torn = self._torn or writing
                self.on_lost(count)
                _log.error(
                    "decision log %s: write failed (%s); %d records lost", self.path, error, count
                )
                return
            if self.max_bytes and os.fstat(self._fd).st_size >= self.max_bytes:
                try:
                    self._rotate()
                except OSError as error:
                    _log.error("decision log %s: rotation failed (%s)", self.path, error)

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            self._writer.join()
        self.flush()
        with self._writing:
            os.close(self._fd)

    def _write_periodically(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval)
            self.flush()

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _reopen_if_moved(self) -> None:
        """Follow the path when the file was rotated away (by us, another worker, logrotate)."""
        try:
            moved = self.path.stat().st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            # Open first: if that fails, the old descriptor stays ours (and still valid) instead
            # of a closed number the process may hand to a socket.
            reopened = self._open()
            os.close(self._fd)
            self._fd = reopened

    def _rotate(self) -> None:
        with self.lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # Another process may have rotated (even removed the path) while we waited.
                try:
                    current: int | None = self.path.stat().st_ino
                except FileNotFoundError:
                    current = None
                if current == os.fstat(self._fd).st_ino:
                    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                    self.path.rename(f"{self.path}.{stamp}")
                    self._prune()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._reopen_if_moved()

    def _prune(self) -> None:
        rotated = rotated_logs(self.path)
        for old in rotated[: max(0, len(rotated) - self.keep)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def rotated_logs(path: Path) -> list[Path]:
    """The rotated files of the log at ``path``, oldest first (their names sort by time)."""
    prefix = f"{path.name}."
    return sorted(
        each
        for each in path.parent.glob(f"{path.name}.*")
        if each.name[len(prefix) :][:1].isdigit()
    )


def _write_all(fd: int, data: bytes) -> None:
    # A regular file takes the whole batch in one write; the loop only guards a short write.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
