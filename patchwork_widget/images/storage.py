"""Where image files are opened: local paths and fsspec URLs (issue 27; FEATURES I1, I6).

The one owner of "open a path" for every image reader (``read_array`` / ``read_image``,
``read_images``, thumbnails and the full view, the ``tf.data`` loader's Python reader, feature
extraction and the CLI):

- a local path (or a ``file://`` URL) is opened by :func:`~.guard.open_local_file`: regular
  files within the :class:`~.guard.ReadLimits`;
- any other fsspec URL (``s3://``, ``gs://``, ``http(s)://``, ...) is read through its fsspec
  filesystem, built with the process's :class:`Storage` options (``storage_options``: endpoint,
  profile, ``anon``, ...). Credentials and endpoints also come from where the filesystem's own
  library looks (s3fs and botocore read ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_PROFILE`` and ``~/.aws``), so a URL alone works where those are set. The object's size
  is read from its metadata (``fs.info``: a HEAD request) and checked against the limits
  before any byte is downloaded; the object is then streamed to a local disk cache by the
  filesystem (``fs.get_file``: one request; a server that gives no size is read a block at a
  time and stopped past ``max_bytes``), never held whole in memory. The cache
  (:class:`DiskCache`) is bounded in bytes, least recently used out first, and the cached
  file is read by the same readers as a local file. A second read of the same URL costs no
  network.

A folder or prefix is listed by :func:`list_folder` (``load_folder``'s listing): local folders
with ``os.walk``, URLs through the same filesystem (``fs.find`` / ``fs.ls``, sizes from the
listing), ``http(s)://`` refused (it has no listing).

fsspec's own ``filecache`` / ``simplecache`` keep files without any size bound (their only
limit is an expiry time), so the cache here is a small LRU of its own. Cached objects are
keyed by URL: images of a labeling project are not expected to change in place (clear the
cache, :meth:`DiskCache.clear`, if they do).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import fsspec
from fsspec.utils import get_protocol

from patchwork_widget.images.guard import ImageReadError, ReadLimits, open_local_file
from patchwork_widget.options.checks import check_int, check_path, check_storage_options

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DiskCache",
    "SECRET_KEYS",
    "Storage",
    "configure_storage",
    "current_storage",
    "extension",
    "filesystem",
    "is_url",
    "list_folder",
    "open_image_file",
    "public_options",
]

LOCAL_PROTOCOLS = frozenset({"file", "local"})
DEFAULT_CACHE_BYTES = 2 * 2**30  # 2 GiB of downloaded images kept on disk
_BLOCK = 1 << 20  # bytes copied at a time from a stream of unknown size to the cache

# storage_options keys that hold a secret: never written with the project (any key whose
# name contains one of these words, case-insensitive, is treated the same way)
SECRET_KEYS = ("key", "secret", "token", "password", "credential", "session")


def is_url(path: str | os.PathLike) -> bool:
    """True when ``path`` names a remote fsspec URL (``s3://``, ``http://``, ...); local
    paths and ``file://`` URLs are local."""
    return get_protocol(os.fspath(path)) not in LOCAL_PROTOCOLS


def extension(path: str) -> str:
    """The lower-case extension of a path or URL (a URL's query and fragment left out)."""
    if is_url(path):
        path = urlsplit(path).path
    return os.path.splitext(path)[1].lower()


def _local(path: str) -> str:
    """A local path or ``file://`` URL as a local path."""
    return path[len("file://"):] if path.startswith("file://") else path


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_KEYS)


def public_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``options`` without the keys that hold secrets (at any depth, e.g. inside
    ``client_kwargs``), and the dotted names of the keys left out."""
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in options.items():
        if _is_secret(str(name)):
            dropped.append(str(name))
        elif isinstance(value, Mapping):
            inner, inner_dropped = public_options(value)
            kept[name] = inner
            dropped.extend(f"{name}.{d}" for d in inner_dropped)
        else:
            kept[name] = value
    return kept, dropped


class DiskCache:
    """Downloaded objects on local disk, at most ``max_bytes`` in all, least recently used
    out first.

    One file per URL (named by the URL's SHA-256), written to a temporary name and renamed
    into place, so a reader never sees half a file and several processes may share the
    folder. A file's modification time records its last use, so the order survives a restart.

    Parameters
    ----------
    folder : path
        Where the files are kept (created when missing).
    max_bytes : int
        Largest total size kept. One object larger than this is still read, then dropped.
    """

    def __init__(self, folder: str | os.PathLike, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be an int >= 0 (bytes); got {max_bytes!r}")
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()
        entries = []
        for entry in os.scandir(self.folder):
            if entry.is_file() and not entry.name.startswith("."):
                st = entry.stat()
                entries.append((st.st_mtime, entry.name, st.st_size))
        for _, name, size in sorted(entries):
            self._sizes[name] = size
        self._total = sum(self._sizes.values())

    @staticmethod
    def _name(url: str) -> str:
        return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def total_bytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._total

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    def lookup(self, url: str) -> str | None:
        """The cached file of ``url`` (marked as just used), or None."""
        name = self._name(url)
        path = self.folder / name
        with self._lock:
            known = name in self._sizes
            if known:
                self._sizes.move_to_end(name)
        if not path.is_file():  # evicted by another process sharing the folder
            if known:
                self._forget(name)
            return None
        if not known:  # written by another process
            self._add(name, path.stat().st_size)
        try:
            os.utime(path)
        except OSError:
            pass
        return str(path)

    def store(self, url: str, write: Callable[[str], None], limits: ReadLimits) -> BinaryIO:
        """Let ``write(path)`` put ``url``'s object into a temporary file of the cache, open
        it through the checks of a local file (errors name the URL: a file over
        ``limits.max_bytes`` is refused), then keep it under its name. Returns the open file,
        so a file evicted at once by another reader stays readable."""
        name = self._name(url)
        self.folder.mkdir(parents=True, exist_ok=True)  # removed meanwhile: made again
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".part-")
        os.close(fd)
        try:
            write(tmp)
            handle = open_local_file(tmp, limits, url)
            try:
                os.replace(tmp, self.folder / name)
            except BaseException:
                handle.close()
                raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._add(name, os.fstat(handle.fileno()).st_size)
        return handle

    def _add(self, name: str, size: int) -> None:
        with self._lock:
            self._total -= self._sizes.pop(name, 0)
            self._sizes[name] = size
            self._total += size

    def _forget(self, name: str) -> None:
        with self._lock:
            self._total -= self._sizes.pop(name, 0)

    def evict(self) -> None:
        """Remove the least recently used files until the total is within ``max_bytes``
        (a file open elsewhere stays readable until it is closed)."""
        while True:
            with self._lock:
                if self._total <= self.max_bytes or not self._sizes:
                    return
                name, size = self._sizes.popitem(last=False)
                self._total -= size
            (self.folder / name).unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove every cached file."""
        with self._lock:
            names = list(self._sizes)
            self._sizes.clear()
            self._total = 0
        for name in names:
            (self.folder / name).unlink(missing_ok=True)


def default_cache_folder() -> Path:
    """``$XDG_CACHE_HOME/patchwork_widget/remote``, else ``~/.cache/patchwork_widget/remote``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "patchwork_widget" / "remote"


def filesystem(url: str, storage_options: Mapping[str, Any]
               ) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` built with ``storage_options`` (instances are cached
    by fsspec) and the path within it. Raises ``ImageReadError`` naming ``url`` for a
    protocol fsspec cannot open (its library missing) or options the filesystem refuses."""
    protocol = get_protocol(url)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as e:
        raise ImageReadError(url, f"cannot open {protocol}:// URLs ({e})") from e
    try:
        fs = cls(**storage_options)
    except TypeError as e:
        raise ImageReadError(url, f"storage_options do not fit the {protocol}:// "
                             f"filesystem ({e})") from e
    return fs, fs._strip_protocol(url)


class Storage:
    """How remote image URLs are reached: fsspec filesystem options and a disk cache.

    Parameters
    ----------
    storage_options : dict, optional
        Keyword arguments of the URL's fsspec filesystem, as in pandas' ``storage_options``:
        for ``s3://`` those of ``s3fs.S3FileSystem`` (``endpoint_url``, ``profile``,
        ``anon``, ``client_kwargs``, ``key`` / ``secret``, ...), for ``http(s)://`` those of
        ``HTTPFileSystem``. None: the filesystem's defaults, which for S3 read the standard
        AWS environment variables and config files.
    cache_folder : path, optional
        Where downloaded objects are kept (default :func:`default_cache_folder`).
    cache_bytes : int
        Most bytes kept in the cache (default 2 GiB).
    """

    def __init__(
        self,
        storage_options: Mapping[str, Any] | None = None,
        cache_folder: str | os.PathLike | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.storage_options = ({} if storage_options is None else
                                check_storage_options("storage_options", storage_options))
        folder = check_path("cache_folder", cache_folder, allow_none=True)
        check_int("cache_bytes", cache_bytes, 0)
        self.cache = DiskCache(folder or default_cache_folder(), cache_bytes)

    def filesystem(self, url: str) -> tuple[fsspec.AbstractFileSystem, str]:
        """The fsspec filesystem of ``url`` with this storage's options, and the path within
        it (see :func:`filesystem`)."""
        return filesystem(url, self.storage_options)

    def _download(self, url: str, limits: ReadLimits) -> BinaryIO:
        fs, rpath = self.filesystem(url)
        try:
            info = fs.info(rpath)
        except FileNotFoundError:
            raise ImageReadError(url, "file not found") from None
        except ImageReadError:
            raise
        except Exception as e:  # permission, network, server errors of the filesystem
            raise ImageReadError(url, f"cannot access file ({type(e).__name__}: {e})") from e
        if info.get("type") == "directory":
            raise ImageReadError(url, "not a regular file: it is a folder")
        size = info.get("size")
        if size == 0:
            raise ImageReadError(url, "file is empty (0 bytes)")
        if size is not None and size > limits.max_bytes:
            raise ImageReadError(
                url, f"file is {size:,} bytes, over the limit of {limits.max_bytes:,} "
                "(ReadLimits.max_bytes)")
        if size is not None:  # one request, streamed to disk by the filesystem itself
            def write(tmp: str) -> None:
                fs.get_file(rpath, tmp)
        else:  # a server that does not say the size: streamed, and stopped past the limit
            def write(tmp: str) -> None:
                with fs.open(rpath, "rb", block_size=0) as source, open(tmp, "wb") as out:
                    copied = 0
                    while block := source.read(_BLOCK):
                        copied += len(block)
                        if copied > limits.max_bytes:
                            raise ImageReadError(
                                url, f"file is over the limit of {limits.max_bytes:,} bytes "
                                "(ReadLimits.max_bytes; its size was not known before reading)")
                        out.write(block)
        try:
            return self.cache.store(url, write, limits)
        except FileNotFoundError:
            raise ImageReadError(url, "file not found") from None
        except ImageReadError:
            raise
        except Exception as e:
            raise ImageReadError(url, f"cannot access file ({type(e).__name__}: {e})") from e

    def open(self, url: str, limits: ReadLimits) -> BinaryIO:
        """``url``'s object opened for reading: its cached copy, else downloaded (its size
        checked first). Raises ``ImageReadError`` naming the URL."""
        try:
            path = self.cache.lookup(url)
            if path is not None:
                try:
                    return open_local_file(path, limits, url)
                except ImageReadError:
                    if os.path.exists(path):
                        raise
                    # evicted between the lookup and the open: downloaded again below
            return self._download(url, limits)
        finally:
            self.cache.evict()  # after the open: an object larger than the cache stays readable


_lock = threading.Lock()
_current: Storage | None = None


def current_storage() -> Storage:
    """The process's :class:`Storage` (made with defaults on first use)."""
    global _current
    with _lock:
        if _current is None:
            _current = Storage()
        return _current


def configure_storage(
    storage_options: Mapping[str, Any] | None = None,
    cache_folder: str | os.PathLike | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> Storage:
    """Set how every reader of this process reaches remote URLs (see :class:`Storage`);
    returns the new :class:`Storage`. A project's ``storage_options`` given to
    ``Session.open`` / ``PatchworkWidget`` come here."""
    global _current
    storage = Storage(storage_options, cache_folder, cache_bytes)
    with _lock:
        previous, _current = _current, storage
    if previous is not None and previous.storage_options != storage.storage_options:
        logger.info("remote images are now read with other storage_options (keys: %s)",
                    sorted(storage.storage_options) or "none")
    return storage


def open_image_file(path: str, limits: ReadLimits) -> BinaryIO:
    """Open an image file for reading, local or remote, within ``limits``: the one entry
    point of every reader. Raises ``ImageReadError`` naming ``path``."""
    if is_url(path):
        return current_storage().open(path, limits)
    return open_local_file(_local(path), limits, path)


# Protocols without a listing of a folder: their URLs name single files only.
UNLISTABLE_PROTOCOLS = frozenset({"http", "https"})


def list_folder(
    folder: str,
    recursive: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> list[tuple[str, int | None]]:
    """The regular files below a local folder or an fsspec URL of a folder or prefix, with
    their sizes, sorted by path; names starting with ``.`` (at any depth below ``folder``)
    are left out.

    Parameters
    ----------
    folder : str
        A local path, a ``file://`` URL (both listed on local disk; links to folders are
        not followed) or the URL of a folder / prefix (``s3://bucket/prefix``, ``gs://...``),
        listed through its fsspec filesystem: ``fs.find`` (one flat listing on object
        stores) or, when not ``recursive``, ``fs.ls``. ``http(s)://`` has no listing and is
        refused.
    recursive : bool
        List sub-folders too.
    storage_options : dict, optional
        Options of the URL's filesystem; default those of the process's :class:`Storage`
        (:func:`current_storage`), the ones the readers use.

    Returns
    -------
    list of (str, int or None)
        Absolute local paths or full URLs (``s3://bucket/key``), and each file's size in
        bytes from the listing (None where the filesystem does not say).

    Raises
    ------
    ValueError
        Naming ``folder``: a local folder that does not exist, a URL whose bucket or prefix
        does not exist or lists nothing, a URL naming one file, an ``http(s)://`` URL, a
        protocol fsspec cannot open, a URL its filesystem refuses to list (``s3://``: all
        of S3).
    OSError
        Naming ``folder``: the listing failed otherwise (refused credentials, no answer).
    """
    if storage_options is not None:
        storage_options = check_storage_options("storage_options", storage_options)
    if not is_url(folder):
        return _list_local(folder, recursive)
    protocol = get_protocol(folder)
    if protocol in UNLISTABLE_PROTOCOLS:
        raise ValueError(f"folder {folder!r}: {protocol}:// has no listing of a folder; "
                         "list the images' URLs yourself and build the table with "
                         "prep_label_dataframe(urls, classes)")
    options = current_storage().storage_options if storage_options is None else storage_options
    try:
        fs, root = filesystem(folder, options)
    except ImageReadError as e:
        raise ValueError(f"folder {folder!r}: {e.cause}") from None
    fs.invalidate_cache(root)  # filesystems keep listings: objects added since are seen
    missing = (f"folder must be an existing folder or prefix; nothing is listed at "
               f"{folder!r}")
    try:
        if recursive:
            entries = list(fs.find(root, detail=True).values())
        else:
            entries = fs.ls(root, detail=True)
    except FileNotFoundError as e:
        detail = str(e).strip("'\"")
        raise ValueError(missing + (f" ({detail})" if detail and detail != root else "")
                         ) from None
    except ValueError as e:  # a URL the filesystem cannot list ("s3://": all of S3)
        raise ValueError(f"folder {folder!r} cannot be listed ({e})") from e
    except TypeError as e:  # s3fs takes unknown options, then its client refuses them
        raise ValueError(f"folder {folder!r}: storage_options do not fit the {protocol}:// "
                         f"filesystem ({e})") from e
    except Exception as e:  # permission, network, server errors of the filesystem
        raise OSError(f"cannot list folder {folder!r} ({type(e).__name__}: {e})") from e
    if not entries:
        raise ValueError(missing)
    if len(entries) == 1 and entries[0].get("type") == "file" \
            and entries[0]["name"] == root.rstrip("/"):  # not a folder marker "root/"
        raise ValueError(f"folder {folder!r} names a file, not a folder or prefix")
    prefix = root.rstrip("/") + "/"
    listed = []
    for entry in entries:
        name = entry["name"]
        if entry.get("type") != "file" or name.endswith("/"):  # folders and folder markers
            continue
        relative = name[len(prefix):] if name.startswith(prefix) else name.rsplit("/", 1)[-1]
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        listed.append((fs.unstrip_protocol(name), entry.get("size")))
    listed.sort()
    return listed


def _list_local(folder: str, recursive: bool) -> list[tuple[str, int | None]]:
    """:func:`list_folder` of a local folder (``os.walk``; links to folders not followed)."""
    root = Path(_local(folder)).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(f"folder must be an existing folder; got {folder!r}")
    listed: list[tuple[str, int | None]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:  # a broken link, or removed meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                listed.append((path, st.st_size))
    listed.sort()
    return listed
