"""Checks every strategy in a directory against a running ``stratbox serve``: validates
and routes each one (nothing runs), and with ``--run`` runs them all as one batch.

    stratbox serve &
    PYTHONPATH=clients/python python3 clients/python/examples/check_dir.py examples/strategies
"""

import argparse
import sys
from pathlib import Path

from stratbox_client import Client, Request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a directory of *.py strategies")
    parser.add_argument("--url", help="the server (default: $STRATBOX_URL or 127.0.0.1:8750)")
    parser.add_argument("--run", action="store_true", help="also run them, as one batch")
    parser.add_argument("--input", type=Path, help="with --run: a JSON file every strategy reads")
    args = parser.parse_args()

    client = Client(args.url)
    files = sorted(args.dir.glob("*.py"))
    refused = 0
    for path in files:
        verdict = client.check(path.read_text(), filename=path.name, id=path.name)
        if verdict.ok:
            print(f"{path.name}: ok ({verdict.route.backend})")
        else:
            refused += 1
            for v in verdict.violations:
                print(f"{path.name}:{v.line}:{v.col}: {v.rule}: {v.message}")
    if args.run:
        data = args.input.read_text() if args.input else None
        requests = [
            Request(source=p.read_text(), filename=p.name, id=p.name, input=data) for p in files
        ]
        for outcome in client.batch(requests):
            print(f"{outcome.id}: {outcome.status} {outcome.reason or ''} {outcome.stdout.strip()[:60]}")
    print(f"{len(files)} strategies, {refused} refused", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
