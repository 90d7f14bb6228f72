"""Re-deciding a decision log with another policy: which decisions would change.

Every record is decided again, in log order, by the procedure the server decides with in memory
(:func:`castgate.gate.decide_in_memory`: lifetimes end sessions at their next update), with
session state of its own: a fresh :class:`MemoryState` whose clock is the time of the event being
replayed, and which records the *new* decisions. So session counts, idle expiry and denial rates
evolve as they would have under the new policy, not as the log's old decisions left them.

The record format is the decision log's (docs/operating.md). Skipped, and counted: requests that
could not be parsed (no event to decide), failure decisions (the old decision was not the
policy's), lines that are not records, and a last line cut short by a crash.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import math
import time
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from castgate.events import Decision, Effect, Event
from castgate.gate import checked, decide_in_memory
from castgate.lang import PolicySet
from castgate.lang.functions import DependencyError
from castgate.logs import iso_time
from castgate.plugins import Registry
from castgate.settings import Settings
from castgate.state.memory import MemoryState
from castgate.timestamps import parse_timestamp

#: Examples kept per group of changed decisions, unless the caller asks for another number.
EXAMPLES_PER_GROUP = 3
#: Unreadable lines named by file:line in the report; the rest are only counted.
PROBLEMS_NAMED = 5
#: How far into a file to look for its first record's time, which orders the files.
_LINES_FOR_FIRST_TIME = 100
_GZIP_MAGIC = b"\x1f\x8b"
#: A tuple, not a set: a record's effect may be any JSON value, lists included.
_EFFECTS = tuple(Effect)


class LogError(Exception):
    """A log that cannot be read at all; ``str()`` names the file and why."""


class Skipped(StrEnum):
    """Why a line was not compared."""

    #: The request could not be parsed: its event holds only vendor and action.
    MALFORMED = "malformed"
    #: A failure decision (state backend down, ...): the old decision was not the policy's.
    FAILED = "failed"
    #: A policy function's upstream failed while replaying: the new decision is not the policy's.
    DEPENDENCY_FAILED = "dependency_failed"
    #: The vendor's plugin is not installed here, so the server could not have decided it.
    UNKNOWN_VENDOR = "unknown_vendor"
    #: Outside ``--vendor``/``--action``; still replayed, for the sessions it opens and closes.
    FILTERED = "filtered"
    NOT_A_RECORD = "not_a_record"
    #: A last line without its newline: the writer stopped mid-line.
    TRUNCATED = "truncated"


#: Of :class:`Skipped`, the lines that held a record (the others are unreadable).
NOT_COMPARED = (
    Skipped.FAILED,
    Skipped.MALFORMED,
    Skipped.DEPENDENCY_FAILED,
    Skipped.UNKNOWN_VENDOR,
    Skipped.FILTERED,
)
UNREADABLE = (Skipped.NOT_A_RECORD, Skipped.TRUNCATED)


class NotARecordError(ValueError):
    """A line that is JSON but not a decision record; ``str()`` says what is wrong."""


@dataclass(frozen=True, slots=True)
class Record:
    """One line of the decision log, as replay needs it."""

    event: Event
    effect: Effect
    rule: str | None
    reason: str
    policy: str
    failed: bool
    #: Dotted paths whose values the log replaced by ``"<redacted>"``.
    redacted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    effect: Effect
    rule: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"effect": self.effect.value, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Example:
    """One record whose decision would change."""

    where: str
    event: Event
    old: Outcome
    new: Outcome
    redacted: tuple[str, ...]

    @property
    def uncertain(self) -> bool:
        """The new policy may have read a value the log does not have."""
        return bool(self.redacted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "time": iso_time(self.event.time),
            "vendor": self.event.vendor,
            "action": self.event.action,
            "app": self.event.app,
            "stream": self.event.stream,
            "client_ip": self.event.client_ip,
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "uncertain": self.uncertain,
            "redacted": list(self.redacted),
        }


@dataclass(frozen=True, slots=True)
class ChangeKey:
    vendor: str
    action: str
    old_effect: Effect
    new_effect: Effect
    old_rule: str | None
    new_rule: str | None

    @property
    def changes_effect(self) -> bool:
        return self.old_effect is not self.new_effect


@dataclass(slots=True)
class ChangeGroup:
    """Records of one vendor and action whose decision changes the same way."""

    key: ChangeKey
    count: int = 0
    #: Of ``count``, the records with redacted values.
    uncertain: int = 0
    examples: list[Example] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        key = self.key
        return {
            "kind": "effect" if key.changes_effect else "rule",
            "vendor": key.vendor,
            "action": key.action,
            "old": {"effect": key.old_effect.value, "rule": key.old_rule},
            "new": {"effect": key.new_effect.value, "rule": key.new_rule},
            "count": self.count,
            "uncertain": self.uncertain,
            "examples": [example.to_dict() for example in self.examples],
        }


@dataclass(slots=True)
class Report:
    """What replaying logs found. Every line read is counted exactly once: unreadable, not
    compared, unchanged, or in one change group."""

    policy: str
    files: list[Path]
    examples_per_group: int = EXAMPLES_PER_GROUP
    lines: int = 0
    unchanged: int = 0
    skipped: Counter[Skipped] = field(default_factory=Counter)
    #: The first few unreadable lines, as ``file:line: what is wrong``.
    problems: list[str] = field(default_factory=list)
    #: Records per policy version that decided them first: a log can span reloads.
    logged_policies: Counter[str] = field(default_factory=Counter)
    groups: dict[ChangeKey, ChangeGroup] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.lines - sum(self.skipped[reason] for reason in UNREADABLE)

    @property
    def compared(self) -> int:
        return self.records - sum(self.skipped[reason] for reason in NOT_COMPARED)

    @property
    def effect_changes(self) -> int:
        return sum(group.count for group in self.groups.values() if group.key.changes_effect)

    @property
    def rule_changes(self) -> int:
        """Same effect, but another rule (or the default) decides."""
        return sum(group.count for group in self.groups.values() if not group.key.changes_effect)

    def uncertain(self, *, effect: bool) -> int:
        return sum(
            group.uncertain for group in self.groups.values() if group.key.changes_effect is effect
        )

    def changes(self) -> list[ChangeGroup]:
        """Groups whose effect changes, then the others; each kind largest first."""
        return sorted(self.groups.values(), key=_effect_then_size)

    def compare(self, record: Record, new: Outcome, where: Callable[[], str]) -> None:
        if new.effect is record.effect and new.rule == record.rule:
            self.unchanged += 1
            return
        event = record.event
        key = ChangeKey(
            event.vendor, event.action, record.effect, new.effect, record.rule, new.rule
        )
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = ChangeGroup(key)
        group.count += 1
        group.uncertain += bool(record.redacted)
        if len(group.examples) < self.examples_per_group:
            old = Outcome(record.effect, record.rule, record.reason)
            group.examples.append(Example(where(), event, old, new, record.redacted))

    def unreadable(self, reason: Skipped, where: str, what: str) -> None:
        self.skipped[reason] += 1
        if len(self.problems) < PROBLEMS_NAMED:
            self.problems.append(f"{where}: {what}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "files": [str(path) for path in self.files],
            "lines": self.lines,
            "records": self.records,
            "compared": self.compared,
            "unchanged": self.unchanged,
            "effect_changes": self.effect_changes,
            "effect_changes_uncertain": self.uncertain(effect=True),
            "rule_changes": self.rule_changes,
            "rule_changes_uncertain": self.uncertain(effect=False),
            "not_compared": {reason.value: self.skipped[reason] for reason in NOT_COMPARED},
            "unreadable": {reason.value: self.skipped[reason] for reason in UNREADABLE},
            "problems": self.problems,
            "logged_policies": dict(self.logged_policies.most_common()),
            "changes": [group.to_dict() for group in self.changes()],
        }

    def text(self) -> str:
        """The report for a person: counts, then the changes largest first, then examples."""
        groups = self.changes()
        effect = [group for group in groups if group.key.changes_effect]
        rule = [group for group in groups if not group.key.changes_effect]
        sections = [
            _summary(self),
            _group_table("decisions whose effect changes", effect),
            _group_table("same effect, another rule decides", rule),
            "\n\n".join(_examples(group) for group in groups if group.examples),
        ]
        return "\n\n".join(section for section in sections if section)


def _effect_then_size(group: ChangeGroup) -> tuple[bool, int, str, str, str, str]:
    key = group.key
    names = (key.vendor, key.action, key.old_rule or "", key.new_rule or "")
    return (not key.changes_effect, -group.count, *names)


def _summary(report: Report) -> str:
    files = ", ".join(str(path) for path in report.files)
    logged = ", ".join(f"{v or '?'} ({n})" for v, n in report.logged_policies.most_common())
    lines = [
        f"{report.records} records in {files}, decided again with policy {report.policy}",
        f"  logged under policy {logged or '-'}",
        f"  {report.compared:>9} compared",
        f"  {report.unchanged:>9} unchanged",
        f"  {report.effect_changes:>9} effect changes{_uncertain(report.uncertain(effect=True))}",
        f"  {report.rule_changes:>9} same effect, another rule"
        + _uncertain(report.uncertain(effect=False)),
        f"  {report.records - report.compared:>9} not compared{_breakdown(report, NOT_COMPARED)}",
    ]
    unreadable = report.lines - report.records
    if unreadable:
        lines.append(f"  {unreadable:>9} unreadable lines{_breakdown(report, UNREADABLE)}")
        lines.extend(f"              {problem}" for problem in report.problems)
    return "\n".join(lines)


def _uncertain(count: int) -> str:
    return f" ({count} uncertain: the log redacted values the policy may read)" if count else ""


def _breakdown(report: Report, reasons: Sequence[Skipped]) -> str:
    counts = [(reason, report.skipped[reason]) for reason in reasons]
    parts = [f"{reason.value} {count}" for reason, count in counts if count]
    return f" ({', '.join(parts)})" if parts else ""


def _group_table(title: str, groups: Sequence[ChangeGroup]) -> str:
    if not groups:
        return ""
    rows = [f"{title}:"]
    for group in groups:
        uncertain = f"  ({group.uncertain} uncertain)" if group.uncertain else ""
        rows.append(f"  {group.count:>9}  {_describe(group.key)}{uncertain}")
    return "\n".join(rows)


def _describe(key: ChangeKey) -> str:
    effects = f"{key.old_effect} -> {key.new_effect}" if key.changes_effect else f"{key.old_effect}"
    return f"{key.vendor} {key.action}  {effects}  {_rule(key.old_rule)} -> {_rule(key.new_rule)}"


def _rule(name: str | None) -> str:
    return name or "(default)"


def _examples(group: ChangeGroup) -> str:
    lines = [f"{_describe(group.key)}, first {len(group.examples)} of {group.count}:"]
    for example in group.examples:
        event = example.event
        lines.append(
            f"  {example.where}  {iso_time(event.time)}  {event.app}/{event.stream}"
            f"  client {event.client_ip or '-'}"
            + (f"  uncertain: {', '.join(example.redacted)} redacted" if example.uncertain else "")
        )
        for label, outcome in (("was", example.old), ("now", example.new)):
            lines.append(f"    {label} {outcome.effect:<5} {_rule(outcome.rule)}: {outcome.reason}")
    return "\n".join(lines)


def replay_logs(
    logs: Sequence[Path],
    policy: PolicySet,
    registry: Registry,
    settings: Settings,
    *,
    examples: int = EXAMPLES_PER_GROUP,
    vendors: Collection[str] = (),
    actions: Collection[str] = (),
    progress: TextIO | None = None,
) -> Report:
    """Decide every record of ``logs`` again with ``policy`` and report what changes.

    ``logs`` are rotations of one log, in any order: they are replayed oldest first. Only records
    of ``vendors`` and ``actions`` (all when empty) are compared; every record is replayed, for
    the sessions it opens and closes. ``progress`` is a terminal to draw a progress bar on.
    Raises :class:`LogError` when a log cannot be read.
    """
    ordered = sorted(logs, key=_first_time)
    report = Report(policy.version, ordered, examples_per_group=examples)
    replayer = _Replayer(report, policy, registry, settings, frozenset(vendors), frozenset(actions))
    sizes = [path.stat().st_size for path in ordered]
    total, done = sum(sizes), 0
    bar = ProgressBar(progress) if progress is not None else None
    try:
        for path, size in zip(ordered, sizes, strict=True):
            for number, line, position in _numbered_lines(path):
                replayer.line(path, number, line)
                if bar is not None:
                    bar.update(done + position, total)
            done += size
    finally:
        if bar is not None:
            bar.close()
    if not report.records:
        # Replay gates deployments (`castgate replay ... && deploy`): checking nothing must
        # not pass.
        found = f": {report.problems[0]}" if report.problems else ""
        raise LogError(f"no decision records in {', '.join(map(str, ordered))}{found}")
    return report


class _LogClock:
    """The time of the record being replayed, for the session state: expiry and rates follow
    the log, not the wall clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Replayer:
    def __init__(
        self,
        report: Report,
        policy: PolicySet,
        registry: Registry,
        settings: Settings,
        vendors: frozenset[str],
        actions: frozenset[str],
    ) -> None:
        self.report = report
        self.policy = policy
        self.registry = registry
        self.installed = registry.vendors
        self.vendors = vendors
        self.actions = actions
        self.clock = _LogClock()
        self.sessions = MemoryState(
            idle=settings.session_idle, max_age=settings.session_max_age, clock=self.clock
        )
        self.dependency_failed = False

    def line(self, path: Path, number: int, line: bytes) -> None:
        report = self.report
        report.lines += 1
        try:
            record = _record(line)
        except ValueError as problem:
            self._unreadable(path, number, line, problem)
            return
        if record is None:
            report.skipped[Skipped.MALFORMED] += 1
            return
        report.logged_policies[record.policy] += 1
        if record.event.vendor not in self.installed:
            report.skipped[Skipped.UNKNOWN_VENDOR] += 1
            return
        decision = self._decide(record.event)
        skipped = self._not_compared(record)
        if skipped is not None:
            report.skipped[skipped] += 1
        else:
            new = Outcome(decision.effect, decision.rule, decision.reason)
            report.compare(record, new, lambda: f"{path}:{number}")

    def _decide(self, event: Event) -> Decision:
        """Decide as the server does, and record the new decision in the replay's sessions."""
        self.clock.now = event.time
        self.dependency_failed = False
        vendor = self.installed[event.vendor]
        # What an upstream would have answered back then is unknowable now: a decision a call
        # out failed is not compared, and the sessions get the server's default (closed).
        return decide_in_memory(
            self.policy,
            self.sessions,
            event,
            explain=False,
            checked=lambda decision: checked(self.registry, vendor, decision),
            fails_open=False,
            dependency_failed=self._dependency_failed,
        )

    def _dependency_failed(self, error: DependencyError) -> None:
        self.dependency_failed = True

    def _not_compared(self, record: Record) -> Skipped | None:
        event = record.event
        if record.failed:
            return Skipped.FAILED
        if self.dependency_failed:
            return Skipped.DEPENDENCY_FAILED
        if (self.vendors and event.vendor not in self.vendors) or (
            self.actions and event.action not in self.actions
        ):
            return Skipped.FILTERED
        return None

    def _unreadable(self, path: Path, number: int, line: bytes, problem: ValueError) -> None:
        where = f"{path}:{number}"
        if not line.endswith(b"\n"):
            self.report.unreadable(Skipped.TRUNCATED, where, "last line cut short (a crash?)")
        elif isinstance(problem, NotARecordError):
            self.report.unreadable(Skipped.NOT_A_RECORD, where, f"not a decision record: {problem}")
        else:
            start = line[:60].decode("utf-8", errors="replace").rstrip()
            self.report.unreadable(Skipped.NOT_A_RECORD, where, f"not JSON: {start!r}")


def _record(line: bytes) -> Record | None:
    """The record on ``line``; ``None`` for a request that could not be parsed (its event holds
    nothing to decide). Raises ValueError for a line that is not JSON, NotARecordError for
    JSON that is not a record."""
    data = json.loads(line)  # bytes: decoded with surrogatepass, as the writer encodes
    if not isinstance(data, dict):
        raise NotARecordError("not a JSON object")
    if data.get("malformed") is True:
        return None
    effect = data.get("effect")
    if effect not in _EFFECTS:
        raise NotARecordError(f"effect {effect!r} is not allow, deny or ack")
    rule, reason, redacted = data.get("rule"), data.get("reason", ""), data.get("redacted", [])
    if not (rule is None or isinstance(rule, str)) or not isinstance(reason, str):
        raise NotARecordError("rule must be a name or null, and reason a text")
    if not isinstance(redacted, list) or not all(isinstance(path, str) for path in redacted):
        raise NotARecordError("redacted must be a list of field paths")
    event_data = data.get("event")
    if not isinstance(event_data, Mapping):
        raise NotARecordError("no event object")
    # Without a time, Event.from_dict would take the wall clock's: the record's own time is the
    # event's too.
    moment = event_data.get("time", data.get("time"))
    if moment is None:
        raise NotARecordError("no time")
    try:
        event = Event.from_dict({**event_data, "time": moment})
    except (ValueError, TypeError) as error:
        raise NotARecordError(f"event: {error}") from None
    policy = data.get("policy")
    return Record(
        event,
        Effect(effect),
        rule,
        reason,
        policy if isinstance(policy, str) else "",
        failed=data.get("failed") is True,
        redacted=tuple(redacted),
    )


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """``(line number, line, bytes of the file read so far)``.

    A compressed file that ends early (its rotation was interrupted) ends with an empty line
    without newline: the truncated last line it is.
    """
    number = 0
    with _opened(path) as (raw, lines):
        try:
            for number, line in enumerate(lines, 1):
                yield number, line, raw.tell()
        except EOFError:
            yield number + 1, b"", raw.tell()
        except (OSError, zlib.error) as error:
            raise LogError(f"cannot read {path} past line {number}: {error}") from None


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[tuple[io.BufferedReader, Iterable[bytes]]]:
    """The raw file (its position says how far replay is) and its lines, decompressed when it
    is gzip: told by content, since rotated files are not always named ``.gz``."""
    try:
        raw = path.open("rb")
    except OSError as error:
        raise LogError(f"cannot read {path}: {error.strerror or error}") from None
    with raw:
        try:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
        except OSError as error:  # a pipe: replay reads each file twice
            raise LogError(f"cannot read {path}: {error.strerror or error}") from None
        if not compressed:
            yield raw, raw
            return
        with gzip.GzipFile(fileobj=raw) as lines:
            yield raw, lines


def _first_time(path: Path) -> float:
    """When the file's first record was decided; files without one sort last."""
    with _opened(path) as (_, lines):
        try:
            for line in itertools.islice(lines, _LINES_FOR_FIRST_TIME):
                with contextlib.suppress(ValueError, AttributeError):
                    return parse_timestamp(json.loads(line).get("time"))
        except (OSError, EOFError, zlib.error):
            pass  # the replay reports it, with the line it happens at
    return math.inf


class ProgressBar:
    """``replaying [######......]  43%  120/280 MB  ETA 0:12`` on one line of a terminal.

    Redrawn at most every ``interval`` seconds: a draw per record would cost more than the
    record. Logs done within the first interval never show a bar.
    """

    width = 30
    interval = 0.25

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._next_draw = self._started + self.interval
        self._drawn = 0

    def update(self, done: int, total: int) -> None:
        now = self._clock()
        if now < self._next_draw:
            return
        self._next_draw = now + self.interval
        fraction = min(done / total, 1.0) if total else 1.0
        filled = round(fraction * self.width)
        text = (
            f"replaying [{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}"
            f"  {done / 1e6:.0f}/{total / 1e6:.0f} MB{_eta(now - self._started, fraction)}"
        )
        self._stream.write("\r" + text.ljust(self._drawn))
        self._stream.flush()
        self._drawn = len(text)

    def close(self) -> None:
        """Clear the bar, so what is printed next starts on a clean line."""
        if self._drawn:
            self._stream.write("\r" + " " * self._drawn + "\r")
            self._stream.flush()
            self._drawn = 0


def _eta(elapsed: float, fraction: float) -> str:
    if fraction <= 0:
        return ""
    seconds = round(elapsed * (1 - fraction) / fraction)
    return f"  ETA {seconds // 60}:{seconds % 60:02d}"
