"""Command line (B6): ``patchwork-widget demo`` builds and labels the offline demo set (B7)."""

from __future__ import annotations

import argparse
import logging
import sys


def _demo(args: argparse.Namespace) -> int:
    from patchwork_widget.demo import run_headless_demo

    result = run_headless_demo(args.workdir, n_annotate=args.annotate, seed=args.seed)
    print(f"demo images:   {result.images}")
    print(f"labels:        {result.labels}")
    print(f"journal:       {result.journal}")
    print(f"annotated {result.annotated} images from ground truth this run; counts now:")
    print(result.counts.to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patchwork-widget`` command."""
    parser = argparse.ArgumentParser(prog="patchwork-widget", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the demo data and label a few images headless")
    demo.add_argument("--workdir", default="patchwork_demo", help="folder for data and labels")
    demo.add_argument("--annotate", type=int, default=20, help="images to label from ground truth")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
