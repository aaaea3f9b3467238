"""``make bench``: run every benchmark and print its numbers."""

from __future__ import annotations

from bench import arguments, cold_start, digests, fanout, inapp, ingest, kafka_down, templates, worker


def main(quick: bool = False) -> None:
    """Every benchmark in turn (``quick``: each once at a tiny size); a new one is called here too."""
    cold_start.main(quick)
    quantities = ingest.main(quick)
    kafka_down.main(quick)
    quantities.update(worker.main(quick))
    quantities.update(digests.main(quick))
    fanout.main(quick)
    templates.main(quick)
    inapp.main(quick)
    print("per-notification quantities docs/COST.md rests on (measured above; no timing is asserted)")
    for name, value in quantities.items():
        print(f"  {name:<26}{value:12.6g}")


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)
