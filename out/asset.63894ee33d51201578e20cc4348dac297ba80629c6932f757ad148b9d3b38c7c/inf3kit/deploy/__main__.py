"""Run the local AWS emulator: `python -m inf3kit.deploy --port N` (started by LocalAws)."""

from __future__ import annotations

import argparse

from moto import server

from inf3kit.deploy.moto_patches import apply_all


def main() -> None:
    parser = argparse.ArgumentParser(description="inf3kit's local AWS API (moto server)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    apply_all()
    server.main(["--host", "localhost", "--port", str(args.port)])


if __name__ == "__main__":
    main()
