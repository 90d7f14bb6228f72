"""Every hook castgate calls, with its contract. A plugin implements any subset.

Hooks may gain arguments in later versions, never lose them (pluggy passes only the arguments an
implementation names), so implementations keep working across upgrades.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from castgate.enforcement import Enforcer
from castgate.events import Decision, Event
from castgate.lang.functions import PolicyFunction
from castgate.vendor import Vendor

hookspec = pluggy.HookspecMarker("castgate")


@hookspec
def castgate_register_vendors() -> Sequence[Vendor]:
    """Vendors this plugin speaks for. Each serves ``/hooks/<vendor.name>``.

    Two plugins registering the same vendor name is a load error naming both.
    """
    raise NotImplementedError


@hookspec
def castgate_register_functions() -> Sequence[PolicyFunction]:
    """Functions policies may call, e.g. ``geoip.country``. Names are resolved when a policy
    compiles, so a policy calling a function no plugin provides fails ``castgate check``."""
    raise NotImplementedError


@hookspec
def castgate_register_enforcers() -> Sequence[Enforcer]:
    """Enforcers that end sessions through a vendor's API (at most one per vendor). castgate
    calls them for sessions past their lifetime and for sessions a reloaded policy no longer
    allows, for vendors that send no update calls castgate could deny."""
    raise NotImplementedError


@hookspec
def castgate_observe_decision(event: Event, decision: Decision) -> None:
    """Called after every decision has been answered, off the request path. For audit sinks and
    metrics; an exception here is logged and never changes the decision. It runs on the event
    loop: hand anything that blocks (a network write, a slow disk) to a thread or queue of your
    own, or every request waits for it."""
