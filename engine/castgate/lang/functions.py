"""Functions that policies call: the :class:`PolicyFunction` description plugins register."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

#: The value types a policy function may take or return (see docs/policy-language.md, "Types").
TYPE_NAMES: frozenset[str] = frozenset(
    {"string", "number", "bool", "ip", "duration", "time", "list", "object", "any"}
)


@dataclass(frozen=True, slots=True)
class PolicyFunction:
    """A function callable from policies, such as ``geoip.country(client.ip)``.

    ``impl`` receives the evaluated arguments positionally. It is never called with a missing
    argument: a call with a missing argument yields *missing* without calling ``impl``. Whatever
    ``impl`` raises becomes an evaluation error, which denies the request and names the rule.

    A function that reaches outside the process (an HTTP service, DNS, a database) sets
    ``deadline``: each call then runs on a worker thread and may take that many seconds. A call
    that misses its deadline, or raises while calling out, fails the decision as a dependency
    failure (:class:`DependencyError`): denied, unless the operator made that vendor and action
    fail open.
    """

    name: str
    params: tuple[str, ...]
    returns: str
    impl: Callable[..., Any]
    doc: str = ""
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.deadline is not None and not 0 < self.deadline <= 60:
            raise ValueError(
                f"policy function {self.name!r}: deadline must be above 0 and at most 60 seconds"
            )
        for type_name in (*self.params, self.returns):
            if type_name not in TYPE_NAMES:
                raise ValueError(
                    f"policy function {self.name!r}: unknown type {type_name!r} "
                    f"(one of {', '.join(sorted(TYPE_NAMES))})"
                )


class DependencyError(Exception):
    """Something a decision depends on failed: a policy function's upstream timed out or is
    down. Raised from a function's ``impl`` (or by castgate when ``deadline`` passes), it is not
    a rule error: the server answers with the fail mode configured for the vendor and action."""


#: Calls with a deadline run here. Threads are only started by the first such call.
_calls_out = ThreadPoolExecutor(max_workers=32, thread_name_prefix="castgate-function")


def call_with_deadline(function: PolicyFunction, args: Sequence[Any]) -> Any:
    """``function.impl(*args)`` within ``function.deadline`` seconds, or DependencyError.

    A call that misses its deadline keeps its thread until it returns; its result is dropped.
    """
    assert function.deadline is not None
    pending = _calls_out.submit(function.impl, *args)
    try:
        return pending.result(timeout=function.deadline)
    except FutureTimeout:
        pending.cancel()
        raise DependencyError(
            f"{function.name}() missed its deadline of {function.deadline * 1000:g} ms"
        ) from None
    except DependencyError:
        raise
    except Exception as error:
        raise DependencyError(f"{function.name}() failed: {type(error).__name__}") from error


_skip_calls_out: ContextVar[bool] = ContextVar("castgate_skip_calls_out", default=False)


@contextmanager
def calls_out_skipped() -> Iterator[None]:
    """Within this block, functions with a deadline are not called: they yield *missing*. How a
    decision is made again without a dependency that failed (fail open)."""
    token = _skip_calls_out.set(True)
    try:
        yield
    finally:
        _skip_calls_out.reset(token)


def skipping_calls_out() -> bool:
    return _skip_calls_out.get()
