"""In-app latency: from ``POST /api/v1/events`` to the ``notification`` frame on a real WebSocket.

The whole local stack runs as ``make local`` runs it (``local.launch``): the API behind the HTTP gateway, Tansu,
the Kafka poller handing the worker MSK-shaped batches, moto, and the WebSocket gateway with its management API.
A ``websockets`` client connects as one demo user with a user token; after ``WARM_UP`` of them, each of ``COUNT``
review_liked events (websocket only) is sent and timed until its frame arrives, one at a time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import websockets

from bench import arguments
from local.launch import StackProcess, start

COUNT = 200
WARM_UP = 5
USER = "demo-user-9"


def _event(title: str) -> dict[str, Any]:
    return {
        "event_type": "review_liked",
        "payload": {"review_id": title, "movie_id": "m-1", "movie_title": title, "liked_by": "Grace", "likes_count": 1},
        "recipients": {"user_ids": [USER]},
        "channels": ["websocket"],
    }


async def _measure(stack: StackProcess, token: str, count: int, warm_up: int) -> list[float]:
    latencies: list[float] = []
    async with websockets.connect(f"{stack.ws}/?token={token}", max_size=None) as socket:
        for n in range(warm_up + count):
            title = f"bench-{n}-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            status, body = await asyncio.to_thread(stack.call, "POST", "/api/v1/events", _event(title))
            if status != 202:
                raise RuntimeError(f"the event was refused: {status} {body}")
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if frame.get("type") == "notification" and frame["item"]["data"].get("movie_title") == title:
                    break
            if n >= warm_up:
                latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main(quick: bool = False) -> dict[str, float]:
    """Print the median and p99 of COUNT in-app notifications (``quick``: 2 after 1); return them."""
    count, warm_up = (2, 1) if quick else (COUNT, WARM_UP)
    with tempfile.TemporaryDirectory() as state:
        stack = start(Path(state))
        try:
            status, body = stack.call("POST", f"/api/v1/users/{USER}/tokens")
            if status != 201:
                raise RuntimeError(f"no token: {status} {body}")
            latencies = asyncio.run(_measure(stack, body["token"], count, warm_up))
        finally:
            stack.stop()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    median = statistics.median(ordered)
    print(f"in-app: POST /api/v1/events → its frame on the socket, {len(ordered)} notifications, one at a time")
    print(f"  median {median:8.1f} ms   p99 {p99:8.1f} ms   min {ordered[0]:.1f} ms   max {ordered[-1]:.1f} ms")
    return {"inapp_median_ms": median, "inapp_p99_ms": p99}


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)
