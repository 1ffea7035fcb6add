"""The patchwork-widget command (B6), for batch jobs on servers.

  demo               build the demo images and label a few from ground truth
  pretrain CONFIG    train a feature extractor as a YAML file says
  extract, join      features of a list of images, optionally in shards across jobs
  export OUTFILE     labels, annotation history and predictions as CSV or Parquet
  serve OUTFILE      the labeling app in a browser, without Jupyter

Each command has --help; docs/cli.md shows them end to end.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from patchwork_widget import cli_extract, cli_pretrain
from patchwork_widget.cli_args import add_project_arguments, count, port, project_options, seed
from patchwork_widget.options.project import SERVED_FIELDS

logger = logging.getLogger(__name__)


def _demo(args: argparse.Namespace) -> list[str]:
    from patchwork_widget.demo import run_headless_demo

    writable_folder(args.workdir, "--workdir")
    result = run_headless_demo(args.workdir, n_annotate=args.annotate, seed=args.seed)
    return [f"demo images:   {result.images}", f"labels:        {result.labels}",
            f"journal:       {result.journal}",
            f"annotated {result.annotated} images from ground truth this run; counts now:",
            result.counts.to_string()]


def _export(args: argparse.Namespace) -> list[str]:
    import pandas as pd

    from patchwork_widget.labels import LabelStore, journal_path, load_labels, save_labels
    from patchwork_widget.labels.records import HISTORY_COLUMNS

    outfile = Path(args.outfile)
    if not outfile.is_file():
        raise ValueError(f"OUTFILE must be an existing label file; got {args.outfile!r}")
    out = writable_folder(args.out or outfile.parent / f"{outfile.stem}_export", "--out")
    ext = f".{args.format}"
    if Path(journal_path(outfile)).is_file():
        store = LabelStore.open(outfile, read_only=True, autosave=None)
        try:
            labels, history = store.copy(list(store.df.columns)), store.history()
        finally:
            store.close()
    else:  # a label file nobody has labeled through the journal yet: no history
        labels, history = load_labels(outfile), pd.DataFrame(columns=HISTORY_COLUMNS)
    written = [out / f"labels{ext}", out / f"history{ext}"]
    save_labels(labels, written[0])
    _write_table(history, written[1])
    if args.models:
        written.append(_export_predictions(args, labels, out / f"predictions{ext}"))
    return [f"wrote {path}" for path in written]


def writable_folder(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder this process can write into (made when missing), or
    ``ValueError`` naming ``option``, the path and why not."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} must be a folder; {str(folder)!r} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{option} {str(folder)!r} cannot be made: {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(folder)!r} is not writable")
    return folder


def _write_table(df, path: Path) -> None:
    """A plain table (not a label table) as CSV or Parquet, atomically."""
    from patchwork_widget.labels.files import write_csv

    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        with open(tmp, "w", newline="") as handle:
            write_csv(df, handle)
    tmp.replace(path)


def _export_predictions(args: argparse.Namespace, labels, path: Path) -> Path:
    import numpy as np

    from patchwork_widget.models.io import load_models, save_predictions
    from patchwork_widget.models.predictions import predict

    models = load_models(args.models)
    features = np.load(args.features, mmap_mode="r") if args.features else None
    if features is None and models.extractor is None:
        raise ValueError(f"{args.models} holds no feature extractor: give --features F.npy")
    preds = predict(models, labels, features=features)
    save_predictions(preds, path, filepaths=labels["filepath"])
    return path


def _serve(args: argparse.Namespace) -> list[str]:
    from patchwork_widget.widget.serve import serve

    # `kill` or a service manager's stop (SIGTERM) ends the server too, as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    token = False if args.no_token else (args.token or True)
    app = serve(args.outfile, args.features, feature_extractor=args.extractor,
                port=args.port, ip=args.ip, token=token, open_browser=args.open_browser,
                options=project_options(args, SERVED_FIELDS))
    print(f"the labeling app is at {app.url}", flush=True)  # now: the server runs until stopped
    print("press Ctrl-C to stop", flush=True)
    try:
        code = app.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        app.stop()
    if code:
        raise SystemExit(code)
    return []


def build_parser() -> argparse.ArgumentParser:
    """The command's parser (every subcommand with its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="patchwork-widget", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build the demo data and label a few images headless")
    demo.add_argument("--workdir", default="patchwork_demo", help="folder for data and labels")
    demo.add_argument("--annotate", type=count, default=20, help="images to label from ground truth")
    demo.add_argument("--seed", type=seed, default=0)
    demo.set_defaults(run=_demo)

    cli_pretrain.add_parser(sub)
    cli_extract.add_parsers(sub)

    export = sub.add_parser(
        "export", help="labels, annotation history and predictions as CSV or Parquet",
        description="Read a project (its label file and journal, without becoming its "
                    "writer) and write labels, history (one row per changed cell) and, with "
                    "--models, predictions into a folder.")
    export.add_argument("outfile", metavar="OUTFILE",
                        help="the project's label file (CSV or Parquet)")
    export.add_argument("--out", help="folder to write to (default: OUTFILE_export beside it)")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--models", help="a folder written by save_models: add predictions")
    export.add_argument("--features", help="the project's features (.npy) for --models")
    export.set_defaults(run=_export)

    srv = sub.add_parser(
        "serve", help="the labeling app in a browser, without Jupyter (needs Voila)",
        description="Serve the labeling app on OUTFILE with Voila (pip install "
                    "'patchwork_widget[serve]'). Listens on the loopback interface with a "
                    "random token unless told otherwise; labels go to the project's journal.")
    srv.add_argument("outfile", metavar="OUTFILE",
                     help="the project's label file (CSV or Parquet)")
    srv.add_argument("--features", help="pre-extracted features (.npy), one row per image")
    srv.add_argument("--extractor", help="a feature extractor (.keras) instead of --features")
    srv.add_argument("--port", type=port, help="port, 1-65535 (default: a free one)")
    srv.add_argument("--ip", default="127.0.0.1",
                     help="interface to listen on (default loopback; 0.0.0.0 for all)")
    srv.add_argument("--token", help="the token to ask for (default: a random one)")
    srv.add_argument("--no-token", action="store_true",
                     help="ask for no token (loopback only)")
    srv.add_argument("--open-browser", action="store_true")
    add_project_arguments(srv.add_argument_group("how the app opens the project"),
                          SERVED_FIELDS)
    srv.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patchwork-widget`` command: 0 on success, 2 for a bad argument or
    config (argparse's code), 1 for a failure of the system (a message, no traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "export" and args.features and not args.models:
        parser.error("argument --features: only used with --models (features to predict on)")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        for line in args.run(args):  # each command returns what it has to say
            print(line)
        return 0
    except (ValueError, ImportError, RuntimeError) as e:
        print(f"patchwork-widget {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"patchwork-widget {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
