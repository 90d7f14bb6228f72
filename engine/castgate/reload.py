"""Policy reload while serving: on SIGHUP and when a policy or data file changes.

A new policy set is compiled off the event loop and swapped in only if it compiles; requests in
flight finish with the set they started with, since each decision reads the gate's policy once.
A policy that does not compile is refused with its full report in the log, and the last good one
keeps serving. After a swap, live sessions are re-checked against the new policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from castgate.lang import PolicyError, PolicySet
from castgate.metrics import Metrics

_log = logging.getLogger(__name__)

#: How often policy and data files are checked for changes, and lifetimes swept.
POLL_SECONDS = 2.0


class Reloadable(Protocol):
    """What reloading needs of the gate (:class:`castgate.gate.Gate`)."""

    policy: PolicySet
    last_reload_error: str
    policy_loaded: float
    metrics: Metrics


def _fingerprint(policy: PolicySet) -> tuple[tuple[str, float, int], ...]:
    stamps = []
    for path in (*policy.files, *policy.data_files):
        try:
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime, stat.st_size))
        except OSError:
            stamps.append((str(path), -1.0, -1))
    return tuple(stamps)


async def reload_policy(gate: Reloadable, compile_again: Callable[[], PolicySet]) -> bool:
    """Compile the policies again and swap them in; ``False`` (old policy kept) on errors."""
    try:
        policy = await asyncio.to_thread(compile_again)
    except PolicyError as error:
        gate.metrics.reloads.labels("refused").inc()
        gate.last_reload_error = error.report()
        _log.error(
            "policy reload refused; still deciding with %s:\n%s",
            gate.policy.version,
            gate.last_reload_error,
        )
        return False
    previous = gate.policy.version
    gate.policy = policy
    gate.policy_loaded = time.time()
    gate.last_reload_error = ""
    gate.metrics.reloads.labels("ok").inc()
    gate.metrics.policy_loaded.set(gate.policy_loaded)
    _log.info("policy reloaded: %s -> %s", previous, policy.version)
    return True


class Watcher:
    """The background task of a serving process: reload on change or SIGHUP, sweep lifetimes."""

    def __init__(
        self,
        gate: Reloadable,
        compile_again: Callable[[], PolicySet],
        after_reload: Callable[[PolicySet], object],
        sweep: Callable[[], object],
    ) -> None:
        self.gate = gate
        self.compile_again = compile_again
        self.after_reload = after_reload
        self.sweep = sweep
        self.requested = asyncio.Event()
        self._seen = _fingerprint(gate.policy)

    def request(self) -> None:
        """Ask for a reload (the SIGHUP handler calls this)."""
        self.requested.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.requested.wait(), POLL_SECONDS)
            changed = _fingerprint(self.gate.policy) != self._seen
            if self.requested.is_set() or changed:
                self.requested.clear()
                if await reload_policy(self.gate, self.compile_again):
                    await _logged(self.after_reload(self.gate.policy))
                self._seen = _fingerprint(self.gate.policy)
            await _logged(self.sweep())


async def _logged(result: object) -> None:
    """Await ``result`` if it is awaitable; log (never raise) what goes wrong."""
    try:
        if asyncio.iscoroutine(result):
            await result
    except Exception:
        _log.exception("background work after a reload or sweep failed")
