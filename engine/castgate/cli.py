"""The ``castgate`` command. Each verb is one small function over the library, listed in VERBS.

Exit codes, for every verb:

- 0: done (``serve``: the server stopped cleanly)
- 1: a policy or a plugin is broken; the report on stderr names the file:line:col or the plugin
- 2: bad usage or an invalid setting (flag or ``CASTGATE_*`` variable, named in the message)
- 3: ``serve`` only: the server could not start (e.g. the port is taken), as uvicorn reports it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import uvicorn

from castgate import settings as configuration
from castgate.app import StartupError, load_gate
from castgate.logs import configure_logging
from castgate.plugins import PluginInfo, PluginStatus, survey_plugins
from castgate.settings import Settings, SettingsError

#: Idle keep-alive connections are closed after this many seconds. Answers already carry
#: ``Connection: close``; this bounds clients that ignore it.
KEEP_ALIVE_SECONDS = 2


@dataclass(frozen=True, slots=True)
class Verb:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        verb: Verb = args.verb
        return verb.run(args)
    except SettingsError as error:
        print(f"castgate: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="castgate", description="Admission control for live streams."
    )
    verbs = parser.add_subparsers(title="verbs", metavar="VERB", required=True)
    for verb in VERBS:
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.help)
        verb.add_arguments(sub)
        sub.set_defaults(verb=verb)
    return parser


# serve


def serve_arguments(parser: argparse.ArgumentParser) -> None:
    _policy_arguments(parser)
    _plugin_arguments(parser)
    _flag(parser, "--host", configuration.parse_host, "address to listen on (127.0.0.1)")
    _flag(parser, "--port", configuration.parse_port, f"port ({configuration.DEFAULT_PORT})")
    _flag(parser, "--workers", configuration.parse_workers, "worker processes (1)")
    _flag(parser, "--log-level", configuration.parse_log_level, "debug, info, warning, error")
    _flag(parser, "--log-format", configuration.parse_log_format, "json or text")
    parser.add_argument(
        "--explain",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log each decision's rule-by-rule trace",
    )


def serve(args: argparse.Namespace) -> int:
    """Check plugins and policies, then run uvicorn; a broken policy never binds the port."""
    settings = _settings(args)
    configure_logging(settings)
    try:
        load_gate(settings)
    except StartupError as error:
        print(error, file=sys.stderr)
        return 1
    # Every worker builds its app from the environment, so the flags travel there; one code
    # path for one worker or many.
    os.environ.update(settings.to_env())
    uvicorn.run(
        "castgate.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="on",
        access_log=False,  # the decision log says more, once per request
        log_config=None,  # keep castgate's log format for uvicorn's own messages
        log_level=settings.log_level,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Hook callers talk to castgate directly; honouring X-Forwarded-For would let any local
        # caller claim another address.
        proxy_headers=False,
        server_header=False,
    )
    return 0


# plugins


def plugins_arguments(parser: argparse.ArgumentParser) -> None:
    _plugin_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def plugins(args: argparse.Namespace) -> int:
    """List every plugin found, what it provides and whether it loaded; 1 if any is broken."""
    settings = _settings(args)
    configure_logging(settings)
    registry = survey_plugins(settings.disabled_plugins)
    if args.json:
        print(json.dumps({"plugins": [info.to_dict() for info in registry.plugins]}, indent=2))
    else:
        print("\n".join(_describe(info) for info in registry.plugins) or "no plugins installed")
    return 1 if registry.broken else 0


def _describe(info: PluginInfo) -> str:
    lines = [f"{info.name}  {info.status}  {info.distribution} {info.version}  ({info.value})"]
    if info.status is PluginStatus.BROKEN:
        lines.append(f"  error: {info.error}")
    for vendor in info.vendors:
        paths = ", ".join(f"/hooks/{vendor.name}" + (f"/{r}" if r else "") for r in vendor.routes)
        lines.append(f"  vendor {vendor.name}: {paths}")
        lines.append(f"    actions: {', '.join(sorted(vendor.actions))}")
        for key, spec in vendor.response_fields.items():
            lines.append(f"    response {key}: {spec.type}" + (f"  {spec.doc}" if spec.doc else ""))
    for function in info.functions:
        signature = f"{function.name}({', '.join(function.params)}) -> {function.returns}"
        lines.append(f"  function {signature}" + (f"  {function.doc}" if function.doc else ""))
    return "\n".join(lines)


VERBS: tuple[Verb, ...] = (
    Verb("serve", "run the webhook server", serve_arguments, serve),
    Verb("plugins", "list installed plugins and what they provide", plugins_arguments, plugins),
)


# Arguments shared by verbs. Every settings flag defaults to "not given" (SUPPRESS) so that
# only flags actually given override the environment.


def _policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        metavar="PATH",
        action="append",
        type=Path,
        default=argparse.SUPPRESS,
        help="policy file or directory; repeatable (default: the shipped default policy)",
    )


def _plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--disable-plugin",
        metavar="NAME",
        dest="disabled_plugins",
        action="append",
        default=argparse.SUPPRESS,
        help="do not load the plugin with this entry-point name; repeatable, adds to "
        "CASTGATE_DISABLE_PLUGINS",
    )


def _flag(
    parser: argparse.ArgumentParser, flag: str, parse: Callable[[str], Any], help: str
) -> None:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parser.add_argument(flag, type=convert, default=argparse.SUPPRESS, help=help)


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags given on the command line applied over them."""
    settings = Settings.from_env()
    given = {each.name: getattr(args, each.name) for each in fields(Settings) if each.name in args}
    if "policies" in given:
        given["policies"] = tuple(given["policies"])
    if "disabled_plugins" in given:
        given["disabled_plugins"] = settings.disabled_plugins | frozenset(given["disabled_plugins"])
    return replace(settings, **given)
