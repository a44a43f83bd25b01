"""``python -m inf3kit.runtime [serve]``: the server without the full CLI (settings from env)."""

import sys

from inf3kit.runtime.commands import serve

if __name__ == "__main__":
    args = sys.argv[1:]
    if args not in ([], ["serve"]):
        sys.exit("usage: python -m inf3kit.runtime [serve]  (configure with INF3KIT_* variables)")
    sys.exit(serve())
