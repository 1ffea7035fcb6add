"""A project's ``storage_options``: how its remote image URLs are reached (issue 27).

Given once (``Session.open(..., storage_options=...)`` or ``PatchworkWidget``), they are kept
beside the outfile in ``<outfile>.storage.json`` and used again when the project is reopened
without them. Secrets are never written there (nor in the journal or the export): every key
whose name holds ``key``, ``secret``, ``token``, ``password``, ``credential`` or ``session``
(at any depth) is left out of the file, with a warning that says which; they apply to this
process only. Credentials are best left to the standard AWS environment variables, profiles
and config files, which s3fs and botocore read themselves.

The options apply to every image reader of the process
(:func:`~patchwork_widget.images.storage.configure_storage`): one set of storage options per
process, the last project opened with options wins.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from patchwork_widget.images.storage import configure_storage, public_options
from patchwork_widget.options.checks import check_storage_options

logger = logging.getLogger(__name__)

STORAGE_FILE_SUFFIX = ".storage.json"


def storage_file(outfile: str | os.PathLike) -> Path:
    """Where a project's storage options are kept: ``<outfile>.storage.json``."""
    path = Path(outfile)
    return path.with_name(path.name + STORAGE_FILE_SUFFIX)


def save_storage_options(outfile: str | os.PathLike, options: Mapping[str, Any]) -> None:
    """Keep ``options`` without their secrets beside the outfile (replaced atomically; none
    left: the file is removed). Logs a warning naming the keys left out."""
    kept, dropped = public_options(options)
    if dropped:
        logger.warning(
            "storage_options %s hold secrets and are not kept with the project (%s): give "
            "them again when reopening it, or use the AWS environment variables, profiles or "
            "config files", ", ".join(dropped), storage_file(outfile).name)
    path = storage_file(outfile)
    if not kept:
        path.unlink(missing_ok=True)
        return
    try:
        text = json.dumps(kept, indent=1, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"storage_options must hold JSON values (str, number, bool, None, "
                         f"lists and dicts of them) to be kept with the project; {err}") from None
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_storage_options(outfile: str | os.PathLike) -> dict[str, Any] | None:
    """The options kept beside the outfile, or None when there are none."""
    path = storage_file(outfile)
    if not path.is_file():
        return None
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"the storage options in {os.fspath(path)!r} cannot be read ({err}); "
                         "fix or remove that file") from None
    return check_storage_options(os.fspath(path), kept)


def use_project_storage(outfile: str | os.PathLike,
                        storage_options: Mapping[str, Any] | None) -> None:
    """Apply the project's storage options to the process's readers: ``storage_options``
    when given (and kept beside ``outfile``), else those kept there; with neither, the
    readers keep the defaults (the filesystems' own environment and config files)."""
    if storage_options is not None:
        options = check_storage_options("storage_options", storage_options)
        save_storage_options(outfile, options)
    else:
        options = load_storage_options(outfile)
        if options is None:
            return
    configure_storage(options)
