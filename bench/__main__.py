"""``make bench``: run every benchmark and print its numbers."""

from __future__ import annotations

from bench import cold_start


def main() -> None:
    cold_start.main()


if __name__ == "__main__":
    main()
