"""``make bench``: run every benchmark section, print a table, write bench/results.json.

Each section is a module ``bench.<name>`` with ``run() -> dict`` of ``"area.metric": value``;
ratios are computed inside a section against a baseline measured in the same run.
"""
import argparse
import importlib
import json
import sys
import time

from fscluster.table import render

SECTIONS = ("xml_curl", "db", "agent", "failover")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench/results.json")
    parser.add_argument("--only", nargs="*", help="section names to run")
    args = parser.parse_args(argv)
    results = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    failed = []
    for name in args.only or SECTIONS:
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        try:
            results.update(importlib.import_module(f"bench.{name}").run())
        except Exception as exc:  # a broken section is reported, the others still run
            failed.append(name)
            results[f"{name}.error"] = f"{type(exc).__name__}: {exc}"
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    print(render(["metric", "value"], sorted((k, v) for k, v in results.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
