"""Loading plugins: every entry point in the ``castgate`` group, built-in or installed, one way.

castgate's own vendors are entry points of the castgate distribution, exactly like a package an
operator installs with pip, so the third-party path is the one the built-ins take every day.
Entry points are iterated here rather than through pluggy's ``load_setuptools_entrypoints`` so
that a plugin can be blocked before it is imported, its distribution is recorded, and a broken
plugin becomes a :class:`PluginError` naming it instead of a traceback from deep inside pluggy.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import pluggy

from castgate import hookspecs
from castgate.enforcement import Enforcer
from castgate.events import Decision, Event
from castgate.lang.functions import PolicyFunction
from castgate.vendor import ResponseField, Vendor

ENTRY_POINT_GROUP = "castgate"

_log = logging.getLogger(__name__)

_VENDOR_NAME = re.compile(r"[a-z][a-z0-9_]*")
_FUNCTION_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)
_HOOK_NAMES = tuple(name for name in vars(hookspecs) if name.startswith("castgate_"))


class PluginStatus(StrEnum):
    LOADED = "loaded"
    BLOCKED = "blocked"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One entry point of the ``castgate`` group and what loading it gave."""

    #: The entry-point name: what ``--disable-plugin`` and ``CASTGATE_DISABLE_PLUGINS`` take.
    name: str
    #: The entry-point value, ``module`` or ``module:attribute``.
    value: str
    distribution: str
    version: str
    status: PluginStatus
    vendors: tuple[Vendor, ...] = ()
    functions: tuple[PolicyFunction, ...] = ()
    enforcers: tuple[Enforcer, ...] = ()
    #: Why a broken plugin could not be loaded; empty otherwise.
    error: str = ""

    @property
    def origin(self) -> str:
        return f"plugin {self.name!r} ({self.distribution} {self.version})"

    def to_dict(self) -> dict[str, Any]:
        """The plugin as plain JSON data, as ``castgate plugins --json`` prints it."""
        return {
            "name": self.name,
            "value": self.value,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status.value,
            "error": self.error,
            "vendors": [
                {
                    "name": vendor.name,
                    "routes": list(vendor.routes),
                    "actions": sorted(vendor.actions),
                    "response_fields": {
                        key: {"type": spec.type, "doc": spec.doc}
                        for key, spec in vendor.response_fields.items()
                    },
                }
                for vendor in self.vendors
            ],
            "functions": [
                {
                    "name": function.name,
                    "params": list(function.params),
                    "returns": function.returns,
                    "doc": function.doc,
                }
                for function in self.functions
            ],
            "enforcers": [enforcer.vendor for enforcer in self.enforcers],
        }


class PluginError(Exception):
    """Plugins that could not be loaded, each named with its distribution and the reason."""

    def __init__(self, broken: tuple[PluginInfo, ...]) -> None:
        super().__init__("\n".join(f"{info.origin}: {info.error}" for info in broken))
        self.broken = broken


@dataclass(frozen=True, slots=True)
class Registry:
    """What the loaded plugins contribute, and which plugins there are."""

    #: Every entry point found, in load order (castgate's own first), whatever its status.
    plugins: tuple[PluginInfo, ...]
    vendors: Mapping[str, Vendor]
    functions: Mapping[str, PolicyFunction]
    #: Enforcers by the vendor whose sessions they end.
    enforcers: Mapping[str, Enforcer]
    #: pluggy's hook relay, for hooks called by name (``registry.hook.castgate_...``).
    hook: pluggy.HookRelay

    @property
    def broken(self) -> tuple[PluginInfo, ...]:
        return tuple(info for info in self.plugins if info.status is PluginStatus.BROKEN)

    def provider_of(self, vendor_name: str) -> PluginInfo:
        """The plugin that registered the vendor ``vendor_name`` (which must be registered)."""
        return next(
            info
            for info in self.plugins
            if any(vendor.name == vendor_name for vendor in info.vendors)
        )

    def observe_decision(self, event: Event, decision: Decision) -> int:
        """Call every ``castgate_observe_decision`` implementation; never raises, returns how
        many failed.

        Each implementation is called on its own, not through the relay, so that one failing
        sink is logged with its plugin's name and the sinks after it still run.
        """
        arguments = {"event": event, "decision": decision}
        failures = 0
        for impl in self.hook.castgate_observe_decision.get_hookimpls():
            try:
                impl.function(**{name: arguments[name] for name in impl.argnames})
            except Exception:
                failures += 1
                _log.exception("plugin %r failed in castgate_observe_decision", impl.plugin_name)
        return failures


def load_plugins(disabled: Collection[str] = ()) -> Registry:
    """Load every plugin not in ``disabled``; raise :class:`PluginError` if any is broken."""
    registry = survey_plugins(disabled)
    if registry.broken:
        raise PluginError(registry.broken)
    return registry


def survey_plugins(disabled: Collection[str] = ()) -> Registry:
    """Load every plugin not in ``disabled``, recording broken ones instead of raising.

    A broken plugin contributes nothing: its hooks are unregistered and its vendors and functions
    dropped, so what the registry holds is always consistent. ``castgate plugins`` shows the
    survey; everything that serves requests goes through :func:`load_plugins`.
    """
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    entry_points = sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
        # castgate's own first, so a third-party plugin that clashes with a built-in is the one
        # reported as broken.
        key=lambda entry_point: (_distribution(entry_point)[0] != "castgate", entry_point.name),
    )
    unknown = set(disabled) - {entry_point.name for entry_point in entry_points}
    if unknown:
        _log.warning("no installed plugin is named %s", ", ".join(sorted(unknown)))

    plugins: list[PluginInfo] = []
    vendors: dict[str, tuple[Vendor, PluginInfo]] = {}
    functions: dict[str, tuple[PolicyFunction, PluginInfo]] = {}
    enforcers: dict[str, tuple[Enforcer, PluginInfo]] = {}
    for entry_point in entry_points:
        distribution, version = _distribution(entry_point)
        info = PluginInfo(
            entry_point.name, entry_point.value, distribution, version, PluginStatus.BLOCKED
        )
        namesake = next((other for other in plugins if other.name == entry_point.name), None)
        if entry_point.name in disabled:
            pass
        elif namesake is not None:
            info = _broken(
                info, f"its entry-point name is already taken by {namesake.origin}; rename one"
            )
        else:
            info = _load(manager, entry_point, info, vendors, functions, enforcers)
            vendors.update((vendor.name, (vendor, info)) for vendor in info.vendors)
            functions.update((function.name, (function, info)) for function in info.functions)
            enforcers.update((each.vendor, (each, info)) for each in info.enforcers)
        plugins.append(info)
    return Registry(
        plugins=tuple(plugins),
        vendors=MappingProxyType({name: vendor for name, (vendor, _) in vendors.items()}),
        functions=MappingProxyType({name: func for name, (func, _) in functions.items()}),
        enforcers=MappingProxyType({name: each for name, (each, _) in enforcers.items()}),
        hook=manager.hook,
    )


class _LoadError(Exception):
    """What is wrong with one plugin, worded for the operator who installed it."""


def _load(
    manager: pluggy.PluginManager,
    entry_point: importlib.metadata.EntryPoint,
    info: PluginInfo,
    vendors: Mapping[str, tuple[Vendor, PluginInfo]],
    functions: Mapping[str, tuple[PolicyFunction, PluginInfo]],
    enforcers: Mapping[str, tuple[Enforcer, PluginInfo]],
) -> PluginInfo:
    try:
        plugin = entry_point.load()
    except Exception as error:
        return _broken(info, f"cannot import {entry_point.value!r}: {_describe(error)}")
    if manager.is_registered(plugin):
        other = manager.get_name(plugin)
        return _broken(info, f"{entry_point.value!r} is already loaded as plugin {other!r}")
    try:
        manager.register(plugin, name=entry_point.name)
        _check_hook_names(manager, plugin)
        own_vendors = tuple(_vendors(manager, plugin))
        own_functions = tuple(_functions(manager, plugin))
        own_enforcers = tuple(_enforcers(manager, plugin))
        _check_unique("vendor", [vendor.name for vendor in own_vendors], vendors)
        _check_unique("policy function", [func.name for func in own_functions], functions)
        _check_unique("enforcer for vendor", [e.vendor for e in own_enforcers], enforcers)
    except (pluggy.PluginValidationError, _LoadError) as error:
        # pluggy keeps a half-registered plugin when validation fails midway; take it all out
        # so a broken plugin's other hooks are never called.
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        return _broken(info, str(error))
    return PluginInfo(
        info.name,
        info.value,
        info.distribution,
        info.version,
        PluginStatus.LOADED,
        own_vendors,
        own_functions,
        own_enforcers,
    )


def _broken(info: PluginInfo, error: str) -> PluginInfo:
    return PluginInfo(
        info.name, info.value, info.distribution, info.version, PluginStatus.BROKEN, error=error
    )


def _check_hook_names(manager: pluggy.PluginManager, plugin: object) -> None:
    for caller in manager.get_hookcallers(plugin) or ():
        if not caller.has_spec():
            raise _LoadError(f"unknown hook {caller.name!r}{_did_you_mean(caller.name)}")
    for attribute in dir(plugin):
        if (
            attribute.startswith("castgate_")
            and callable(getattr(plugin, attribute, None))
            and manager.parse_hookimpl_opts(plugin, attribute) is None
        ):
            raise _LoadError(
                f"{attribute!r} looks like a hook but is not marked with @castgate.hookimpl, "
                "so castgate would never call it"
            )


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, _HOOK_NAMES, n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (castgate has {', '.join(_HOOK_NAMES)})"


def _results(manager: pluggy.PluginManager, plugin: object, hook_name: str) -> list[object]:
    """What ``plugin``'s own implementations of a registration hook return, flattened.

    Called per plugin rather than through the relay so that every item and every exception is
    attributed to the plugin it came from.
    """
    items: list[object] = []
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        if impl.plugin is not plugin:
            continue
        try:
            returned = impl.function()
        except Exception as error:
            raise _LoadError(f"{hook_name} raised {_describe(error)}") from error
        if not isinstance(returned, list | tuple):
            raise _LoadError(f"{hook_name} must return a list, got {type(returned).__name__}")
        items.extend(returned)
    return items


def _vendors(manager: pluggy.PluginManager, plugin: object) -> list[Vendor]:
    vendors: list[Vendor] = []
    for item in _results(manager, plugin, "castgate_register_vendors"):
        if not isinstance(item, Vendor):
            raise _LoadError(
                f"castgate_register_vendors returned {item!r}, which is not a castgate.Vendor"
            )
        _check_vendor(item)
        vendors.append(item)
    return vendors


def _check_vendor(vendor: Vendor) -> None:
    kind = type(vendor).__name__
    name = getattr(vendor, "name", None)
    if not isinstance(name, str) or not name:
        raise _LoadError(f"vendor class {kind} has no name; set the class attribute name = '...'")
    if not _VENDOR_NAME.fullmatch(name):
        raise _LoadError(
            f"vendor name {name!r} ({kind}) must be one lowercase word: letters, digits and "
            "underscores, starting with a letter"
        )
    actions = getattr(vendor, "actions", None)
    if not isinstance(actions, frozenset | set) or not actions:
        raise _LoadError(f"vendor {name!r} must declare actions, a non-empty frozenset of names")
    if not all(isinstance(action, str) for action in actions):
        raise _LoadError(f"vendor {name!r}: every action must be a string")
    if isinstance(vendor.routes, str) or not all(isinstance(r, str) for r in vendor.routes):
        raise _LoadError(f"vendor {name!r}: routes must be a sequence of strings, e.g. ('',)")
    if not isinstance(vendor.response_fields, Mapping) or not all(
        isinstance(spec, ResponseField) for spec in vendor.response_fields.values()
    ):
        raise _LoadError(
            f"vendor {name!r}: response_fields must map keys to castgate.ResponseField"
        )


def _functions(manager: pluggy.PluginManager, plugin: object) -> list[PolicyFunction]:
    functions: list[PolicyFunction] = []
    for item in _results(manager, plugin, "castgate_register_functions"):
        if not isinstance(item, PolicyFunction):
            raise _LoadError(
                f"castgate_register_functions returned {item!r}, "
                "which is not a castgate.PolicyFunction"
            )
        if not _FUNCTION_NAME.fullmatch(item.name):
            raise _LoadError(
                f"policy function name {item.name!r} must be dotted identifiers, "
                "e.g. 'geoip.country'"
            )
        functions.append(item)
    return functions


def _enforcers(manager: pluggy.PluginManager, plugin: object) -> list[Enforcer]:
    enforcers: list[Enforcer] = []
    for item in _results(manager, plugin, "castgate_register_enforcers"):
        if not isinstance(item, Enforcer):
            raise _LoadError(
                f"castgate_register_enforcers returned {item!r}, which is not a castgate.Enforcer"
            )
        if not isinstance(getattr(item, "vendor", None), str) or not item.vendor:
            raise _LoadError(f"enforcer {type(item).__name__} must name its vendor")
        enforcers.append(item)
    return enforcers


def _check_unique(
    kind: str, names: list[str], taken: Mapping[str, tuple[object, PluginInfo]]
) -> None:
    for index, name in enumerate(names):
        if name in names[:index]:
            raise _LoadError(f"{kind} {name!r} is registered twice by this plugin")
        if name in taken:
            raise _LoadError(f"{kind} {name!r} is already registered by {taken[name][1].origin}")


def _distribution(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "unknown distribution", "?"
    return dist.metadata["Name"], dist.version


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
