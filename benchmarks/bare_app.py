"""The ceiling of benchmarks/http_path.py: a Starlette endpoint that answers 200 and does nothing
else, served by uvicorn with exactly the settings ``castgate serve`` uses.

    python benchmarks/bare_app.py --port 18080

Every path answers, for GET and POST alike, with an empty 200 and ``Connection: close``: castgate
closes every connection after its answer (nginx-rtmp acts on a notify answer only then), so the
ceiling pays for one TCP connection per request too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any
from unittest import mock

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from castgate import cli


async def ok(request: Request) -> Response:
    return Response(status_code=200, headers={"Connection": "close"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])


def castgate_uvicorn_settings(port: int) -> dict[str, Any]:
    """The keyword arguments ``castgate serve`` passes to ``uvicorn.run``.

    Captured by running the real ``serve`` verb with ``uvicorn.run`` replaced, rather than copied,
    so that the ceiling follows any change to castgate's server settings.
    """
    captured: dict[str, Any] = {}

    def capture(app: str, **settings: Any) -> None:
        captured.update(settings)

    with mock.patch.object(cli.uvicorn, "run", capture):
        status = cli.main(["serve", "--port", str(port)])
    if status != 0 or not captured:
        raise SystemExit(f"castgate serve did not reach uvicorn.run (exit status {status})")
    return captured


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = castgate_uvicorn_settings(args.port)
    # castgate passes an import string with factory=True; the factory here is create_app.
    uvicorn.run(create_app, **settings)


if __name__ == "__main__":
    main()
