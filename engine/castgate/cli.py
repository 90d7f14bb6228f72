"""The ``castgate`` command. Each verb is one small function over the library, listed in VERBS;
a verb's arguments come from a sibling ``<verb>_arguments`` function. Exit codes are EXIT_CODES,
the same for every verb.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import uvicorn

from castgate import settings as configuration
from castgate.connections import HTTP_PROTOCOL
from castgate.events import Event
from castgate.gate import StartupError, load_gate, open_decision_log
from castgate.lang import PolicyError, compile_policies, policy_files
from castgate.lang.formatter import format_source
from castgate.lang.parser import duration_seconds
from castgate.lang.testing import TEST_SUFFIX, find_test_files, run_test_file
from castgate.lang.tokens import link_signature
from castgate.logs import configure_logging
from castgate.plugins import (
    PluginError,
    PluginInfo,
    PluginStatus,
    Registry,
    load_plugins,
    survey_plugins,
)
from castgate.replay import EXAMPLES_PER_GROUP, LogError, replay_logs
from castgate.settings import Settings, SettingsError
from castgate.state import FixedState

EXIT_CODES = """exit codes:
  0  done (serve: the server stopped cleanly)
  1  a policy or a plugin is broken; the report names the file:line:col or the plugin
  2  bad usage, or an invalid setting (the flag or CASTGATE_* variable is named)
  3  serve: the server could not start, e.g. the port is taken
"""

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
        prog="castgate",
        description="Admission control for live streams.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    _flag(parser, "--host", configuration.parse_host, "address to listen on, default 127.0.0.1")
    _flag(parser, "--port", configuration.parse_port, f"port, default {configuration.DEFAULT_PORT}")
    _flag(parser, "--workers", configuration.parse_workers, "worker processes, default 1")
    _flag(
        parser,
        "--state",
        configuration.parse_state,
        "session state: memory (default) or redis://host:port/db, shared by workers and hosts",
    )
    _flag(
        parser,
        "--log-level",
        configuration.parse_log_level,
        "debug, info, warning, error or critical, default info",
    )
    _flag(
        parser,
        "--log-format",
        configuration.parse_log_format,
        "json or text, default text at a terminal, else json",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        default=argparse.SUPPRESS,
        help=f"log each decision's rule-by-rule trace ({configuration.VARIABLES['explain']})",
    )
    _flag(
        parser,
        "--decision-log",
        configuration.parse_path,
        "append every decision as a JSON line to this file (see docs/operating.md)",
    )


def serve(args: argparse.Namespace) -> int:
    """Check plugins and policies, then run uvicorn; a broken policy never binds the port."""
    settings = _settings(args)
    configure_logging(settings)
    try:
        load_gate(settings)
        # Workers open the log after the port is bound, where a failure cannot stop serve.
        checked_log = open_decision_log(settings)
    except StartupError as error:
        print(error, file=sys.stderr)
        return 1
    if checked_log is not None:
        checked_log.close()
    # Every worker builds its app from the environment, so the flags travel there; one code
    # path for one worker or many.
    os.environ.update(settings.to_env())
    metrics_dir = None
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers count in files here, so a scrape of any one of them reports all of them.
        metrics_dir = tempfile.mkdtemp(prefix="castgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
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
            # X-Forwarded-For is honoured only from CASTGATE_TRUSTED_PROXIES, by castgate's
            # HookGuard; uvicorn's would trust any local caller.
            proxy_headers=False,
            server_header=False,
            # uvicorn's own protocol with deadlines for reading each request's head and body.
            http=HTTP_PROTOCOL,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
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
    for enforcer in info.enforcers:
        lines.append(f"  enforcer for {enforcer.vendor}: ends sessions through the vendor's API")
    for function in info.functions:
        signature = f"{function.name}({', '.join(function.params)}) -> {function.returns}"
        lines.append(f"  function {signature}" + (f"  {function.doc}" if function.doc else ""))
    return "\n".join(lines)


# check


def check_arguments(parser: argparse.ArgumentParser) -> None:
    _paths_argument(parser)
    _plugin_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print diagnostics as JSON")


def check(args: argparse.Namespace) -> int:
    """Compile the policies and report every problem; 0 when clean, 1 otherwise."""
    registry = _registry(args)
    if registry is None:
        return 1
    try:
        policy = compile_policies(
            args.paths, vendors=registry.vendors, functions=registry.functions
        )
    except PolicyError as error:
        if args.json:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "diagnostics": [
                            {
                                "file": d.file,
                                "line": d.line,
                                "column": d.column,
                                "code": d.code.value,
                                "message": d.message,
                                "hint": d.hint,
                            }
                            for d in error.diagnostics
                        ],
                    },
                    indent=2,
                )
            )
        else:
            print(error.report())
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "version": policy.version,
                    "rules": len(policy.rules),
                    "files": [str(f) for f in policy.files],
                },
                indent=2,
            )
        )
    else:
        print(
            f"ok: {len(policy.rules)} rules in {len(policy.files)} files (version {policy.version})"
        )
    return 0


# eval


def eval_arguments(parser: argparse.ArgumentParser) -> None:
    _paths_argument(parser)
    _plugin_arguments(parser)
    parser.add_argument(
        "--event",
        required=True,
        metavar="FILE",
        help="the event as JSON (see docs/policy-language.md); - reads stdin",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help='live session counts as JSON, e.g. {"publisher:stream:cam1": 1}',
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also list every rule visited, whether it matched, which decided",
    )


def evaluate(args: argparse.Namespace) -> int:
    """Decide one event and print the decision as JSON; 1 if the policy does not compile."""
    registry = _registry(args)
    if registry is None:
        return 1
    try:
        event = Event.from_dict(_read_json(args.event, "event"))
        counts = _read_json(args.state, "state") if args.state else {}
        state = FixedState({str(k): int(v) for k, v in counts.items()})
    except (ValueError, TypeError, AttributeError) as error:
        print(f"castgate eval: {error}", file=sys.stderr)
        return 2
    try:
        policy = compile_policies(
            args.paths, vendors=registry.vendors, functions=registry.functions
        )
    except PolicyError as error:
        print(error.report(), file=sys.stderr)
        return 1
    print(json.dumps(policy.decide(event, state, explain=args.explain).to_dict(), indent=2))
    return 0


def _read_json(name: str, what: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read the {what} file: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the {what} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the {what} must be a JSON object")
    return data


# test


def test_arguments(parser: argparse.ArgumentParser) -> None:
    _paths_argument(parser)
    _plugin_arguments(parser)


def run_tests(args: argparse.Namespace) -> int:
    """Run the YAML policy tests found under the paths; 1 on any failure or if none exist."""
    registry = _registry(args)
    if registry is None:
        return 1
    files = find_test_files(args.paths)
    if not files:
        print(f"no *{TEST_SUFFIX} files under {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 1
    passed = failed = 0
    for path in files:
        for result in run_test_file(path, vendors=registry.vendors, functions=registry.functions):
            if result.passed:
                passed += 1
                continue
            failed += 1
            print(f"FAIL {result.file}: {result.name}")
            print(textwrap.indent(result.detail, "    "))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


# fmt


def fmt_arguments(parser: argparse.ArgumentParser) -> None:
    _paths_argument(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; list files that are not formatted and exit 1",
    )


def fmt(args: argparse.Namespace) -> int:
    """Rewrite policies in canonical form (or, with --check, report those that are not)."""
    try:
        files = policy_files(args.paths)
    except PolicyError as error:
        print(error.report(), file=sys.stderr)
        return 1
    unformatted = 0
    for path in files:
        source = path.read_text(encoding="utf-8")
        try:
            formatted = format_source(source, str(path))
        except PolicyError as error:
            print(error.report(), file=sys.stderr)
            return 1
        if formatted == source:
            continue
        unformatted += 1
        if args.check:
            print(f"would reformat {path}")
            sys.stdout.writelines(
                difflib.unified_diff(
                    source.splitlines(keepends=True),
                    formatted.splitlines(keepends=True),
                    str(path),
                    f"{path} (formatted)",
                )
            )
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    return 1 if args.check and unformatted else 0


# sign


def sign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "message", help='what the policy signs, e.g. "live/cam1" for app + "/" + stream.name'
    )
    parser.add_argument(
        "--secret-env",
        required=True,
        metavar="VARIABLE",
        help="environment variable holding the signing secret",
    )
    parser.add_argument(
        "--ttl", default="1h", type=_duration, help="how long the link stays valid (default 1h)"
    )


def sign(args: argparse.Namespace) -> int:
    """Print the query arguments of a signed, expiring link that `secure_link` accepts."""
    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"castgate sign: environment variable {args.secret_env} is not set", file=sys.stderr)
        return 2
    expires = int(time.time() + args.ttl)
    print(f"expires={expires}&sig={link_signature(secret, args.message, expires)}")
    return 0


def _duration(text: str) -> float:
    if not re.fullmatch(r"([0-9]+(ms|s|m|h|d))+", text):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 2h, 1d)")
    return duration_seconds(text)


# replay


def replay_arguments(parser: argparse.ArgumentParser) -> None:
    def count(text: str) -> int:
        if not text.isdigit():
            raise argparse.ArgumentTypeError(f"expected a count of 0 or more, got {text!r}")
        return int(text)

    parser.add_argument(
        "logs",
        nargs="+",
        type=Path,
        metavar="LOG",
        help="decision log files, plain or gzip: rotations of one log, in any order",
    )
    _policy_arguments(parser)
    _plugin_arguments(parser)
    for flag, dest, what in (
        ("--vendor", "vendors", "vendor's"),
        ("--action", "actions", "action's"),
    ):
        parser.add_argument(
            flag,
            dest=dest,
            metavar="NAME",
            action="append",
            default=[],
            help=f"compare only this {what} decisions, repeatable (every record is still "
            "replayed: it opens and closes sessions)",
        )
    parser.add_argument(
        "--limit",
        type=count,
        default=EXAMPLES_PER_GROUP,
        metavar="N",
        help=f"examples per group of changed decisions, default {EXAMPLES_PER_GROUP}",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    # replay answers like diff, so its codes differ from the other verbs'.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = """exit codes:
  0  no decision would change effect (another rule deciding the same effect does not count)
  1  some decisions would change effect, uncertain ones (redacted values) included
  2  bad usage, an unreadable log, or a policy or plugin that does not load
"""


def replay(args: argparse.Namespace) -> int:
    """Decide the logged requests again with the policies and report which decisions change."""
    settings = _settings(args)
    registry = _registry(args)
    if registry is None:
        return 2
    try:
        policy = compile_policies(
            settings.policies, vendors=registry.vendors, functions=registry.functions
        )
    except PolicyError as error:
        print(error.report(), file=sys.stderr)
        return 2
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        report = replay_logs(
            args.logs,
            policy,
            registry,
            settings,
            examples=args.limit,
            vendors=args.vendors,
            actions=args.actions,
            progress=sys.stderr if show_progress else None,
        )
    except LogError as error:
        print(f"castgate replay: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    return 1 if report.effect_changes else 0


def _paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="policy files or directories of them"
    )


def _registry(args: argparse.Namespace) -> Registry | None:
    settings = _settings(args)
    try:
        return load_plugins(settings.disabled_plugins)
    except PluginError as error:
        print(f"castgate: {error}", file=sys.stderr)
        return None


VERBS: tuple[Verb, ...] = (
    Verb("serve", "run the webhook server", serve_arguments, serve),
    Verb("check", "compile policies and report every error", check_arguments, check),
    Verb("eval", "decide one event and print the decision", eval_arguments, evaluate),
    Verb("test", "run the policy tests beside the policies", test_arguments, run_tests),
    Verb("fmt", "rewrite policies in canonical form", fmt_arguments, fmt),
    Verb("sign", "mint a signed, expiring link for secure_link", sign_arguments, sign),
    Verb("plugins", "list installed plugins and what they provide", plugins_arguments, plugins),
    Verb("replay", "re-decide a decision log with other policies", replay_arguments, replay),
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
        help="policy file or directory, repeatable, default the shipped default policy "
        f"({configuration.VARIABLES['policies']}, paths separated by {os.pathsep!r})",
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

    variable = configuration.VARIABLES[flag.removeprefix("--").replace("-", "_")]
    parser.add_argument(flag, type=convert, default=argparse.SUPPRESS, help=f"{help} ({variable})")


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags given on the command line applied over them."""
    settings = Settings.from_env()
    given = {each.name: getattr(args, each.name) for each in fields(Settings) if each.name in args}
    if "policies" in given:
        given["policies"] = tuple(given["policies"])
    if "disabled_plugins" in given:
        given["disabled_plugins"] = settings.disabled_plugins | frozenset(given["disabled_plugins"])
    return replace(settings, **given)
