"""``make bench``: run every benchmark and print its numbers."""

from __future__ import annotations

from bench import cold_start, fanout, ingest, templates, worker


def main() -> None:
    cold_start.main()
    ingest.main()
    worker.main()
    fanout.main()
    templates.main()


if __name__ == "__main__":
    main()
