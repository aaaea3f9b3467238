"""Bounds that services and adapters share: API Gateway's WebSocket limits, the connections a user may have, and
the length of an error a job's history or a dead letter keeps.

A neutral home, so that an adapter that enforces a limit (``adapters/apigw.py``, ``adapters/dynamodb/connections.py``)
does not import the service that relies on it (the layering test, ``tests/unit/test_layering.py``).
"""

from __future__ import annotations

#: API Gateway WebSocket limits: one frame, and one message (a message may span frames).
FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
#: Live connections a user may have (MaxConnectionsPerUser): $connect closes the oldest beyond them.
DEFAULT_MAX_CONNECTIONS = 10
#: An error kept in a job's history, its ``SENT`` detail or a dead letter is cut at this many characters.
MAX_ERROR_CHARS = 2000
