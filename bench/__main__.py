"""``make bench``: run every benchmark and print its numbers."""

from __future__ import annotations

from bench import cold_start, fanout, inapp, ingest, templates, worker


def main() -> None:
    cold_start.main()
    quantities = ingest.main()
    quantities.update(worker.main())
    fanout.main()
    templates.main()
    inapp.main()
    print("per-notification quantities docs/COST.md rests on (measured above; no timing is asserted)")
    for name, value in quantities.items():
        print(f"  {name:<26}{value:12.6g}")


if __name__ == "__main__":
    main()
