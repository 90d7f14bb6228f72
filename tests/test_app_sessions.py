"""The server keeps live sessions: limits hold under concurrency, lifetimes end sessions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from served import served

from castgate.app import create_app
from castgate.settings import Settings

POLICY = """
rule one_publisher_per_key {
  on publish from nginx_rtmp
  deny "ExistStreamName" if sessions.key_publishers(params.key) >= 1
}

rule viewer_cap {
  on play from nginx_rtmp
  deny "viewer limit" if sessions.viewers(stream.name) >= 3
}

rule short_lived {
  on publish from nginx_rtmp app short
  allow with { lifetime: 1s }
}

rule publishers {
  on publish, update from nginx_rtmp
  allow
}

rule viewers {
  on play from nginx_rtmp
  allow
}
"""


def body(
    call: str,
    *,
    app: str = "live",
    name: str = "cam1",
    clientid: int = 1,
    args: str = "key=k1",
    extra: str = "",
) -> str:
    """An upstream nginx-rtmp notify body, field order as the real module sends it (updates
    carry time and timestamp before the name, the other calls their fields after it)."""
    session = (
        f"app={app}&flashver=&swfurl=&tcurl=rtmp://127.0.0.1/{app}&pageurl="
        f"&addr=127.0.0.1&clientid={clientid}&call={call}"
    )
    if call.startswith("update"):
        return f"{session}&time=2&timestamp=2000&name={name}&{args}"
    return f"{session}&name={name}{extra}&{args}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "limits.policy").write_text(POLICY)
    settings = Settings(policies=(tmp_path,), log_format="json")
    with served(create_app(settings)) as base_url:
        yield base_url + "/hooks/nginx_rtmp"


async def _post_all(url: str, bodies: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=10) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    url, content=b, headers={"content-type": "application/x-www-form-urlencoded"}
                )
                for b in bodies
            )
        )
    return [answer.status_code for answer in answers]


def test_fifty_simultaneous_publishes_of_one_key_admit_exactly_one(server: str) -> None:
    bodies = [body("publish", name=f"cam{i}", clientid=i, extra="&type=live") for i in range(50)]
    statuses = asyncio.run(_post_all(server, bodies))
    assert sorted(statuses) == [200] + [403] * 49


def test_a_viewer_cap_holds_and_frees_up_after_done(server: str) -> None:
    plays = [body("play", clientid=100 + i, extra="&start=0&duration=0&reset=0") for i in range(5)]
    assert sorted(asyncio.run(_post_all(server, plays))) == [200, 200, 200, 403, 403]
    done = [body("play_done", clientid=100 + i) for i in range(5)]
    assert asyncio.run(_post_all(server, done)) == [200] * 5
    assert asyncio.run(_post_all(server, plays[:1])) == [200]


def test_a_session_past_its_lifetime_is_ended_at_its_next_update(server: str) -> None:
    publish = body("publish", app="short", clientid=7, args="key=k7", extra="&type=live")
    update = body("update_publish", app="short", clientid=7, args="key=k7")
    assert asyncio.run(_post_all(server, [publish])) == [200]
    assert asyncio.run(_post_all(server, [update])) == [200]
    time.sleep(1.2)
    assert asyncio.run(_post_all(server, [update])) == [403]
    # the ended session no longer counts: the key is free again
    assert asyncio.run(_post_all(server, [publish.replace("clientid=7", "clientid=8")])) == [200]
