"""moto server with DynamoDB's requests applied one at a time, as DynamoDB's own isolation would have them.

moto serves each request on its own thread and does not isolate DynamoDB calls from each other: a
``TransactWriteItems`` checks its conditions and writes item by item, and when one condition fails it restores
a copy of the whole table taken when it started, undoing whatever other requests wrote meanwhile. DynamoDB's
transactions are serializable and its conditional writes atomic, and the stores rely on that (the inbox's counts,
a job's claim). Serializing DynamoDB's requests in the server gives the tests that isolation; every other service
(SQS long polls included) is served concurrently as before.

Run as ``python -m local.moto_server -H 127.0.0.1 -p PORT`` (moto's own arguments).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _serialized(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    # DynamoDB's JSON protocol names the operation in X-Amz-Target: DynamoDB_20120810.<Operation>.
    if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
        return _dispatch(self, environ, start_response)
    with _dynamodb:
        return list(_dispatch(self, environ, start_response))


def main(argv: list[str]) -> None:
    """moto's server, with the DynamoDB lock in place."""
    DomainDispatcherApplication.__call__ = _serialized  # type: ignore[method-assign]
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
