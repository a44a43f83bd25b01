"""``python -m inf3kit.runtime [serve]``: the server without the full CLI (settings from env)."""

import sys

from inf3kit.runtime.commands import serve


def main(args: list[str]) -> int:
    """Serve; a bad setting is ``inf3kit: <message>`` on stderr and exit 2, as with ``inf3kit``."""
    if args not in ([], ["serve"]):
        sys.exit("usage: python -m inf3kit.runtime [serve]  (configure with INF3KIT_* variables)")
    try:
        return serve()
    except ValueError as exc:
        print(f"inf3kit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
