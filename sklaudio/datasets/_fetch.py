"""Download, verify and cache the public corpora.

A corpus lives in ``get_data_home() / NAME / EXTRACT_DIR``. That folder only ever
appears through one ``os.replace`` of a fully downloaded, verified and extracted
copy, so its existence means the cache is complete; every partial state lives in
hidden temporary names next to it and is removed on failure.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sklearn.utils import Bunch

from sklaudio.datasets._base import check_on_error
from sklaudio.datasets._esc import ESC50_LAYOUT, load_esc10, load_esc50
from sklaudio.datasets._urbansound8k import URBANSOUND8K_LAYOUT, load_urbansound8k

__all__ = ["RemoteArchive", "fetch_esc10", "fetch_esc50", "fetch_urbansound8k", "get_data_home"]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteArchive:
    """Where a corpus is published and how to recognise a good copy.

    Parameters
    ----------
    filename : str
        Name of the archive; ``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``,
        ``.tar.bz2`` and ``.tar.xz`` are understood.
    url : str
        Where to download it.
    extract_dir : str
        The top-level folder the archive unpacks to; it becomes the cached copy.
    sha256, md5 : str, default=None
        Hex digests of the archive, checked before anything is extracted; a
        download matching any pinned digest is accepted. MD5 exists because
        some hosts (Zenodo, projects pinning GitHub archives) only publish MD5
        sums. With neither, downloads are refused unless ``verify=False``.
    index_file : str, default=None
        A file, relative to ``extract_dir``, that every complete copy holds.
    """

    filename: str
    url: str
    extract_dir: str
    sha256: str | None = None
    md5: str | None = None
    index_file: str | None = None


ARCHIVES: dict[str, RemoteArchive] = {
    # GitHub's archive of the ESC-50 master branch (the repository moved from karoldvl
    # to karolpiczak; the old address redirects). The project publishes no checksum.
    # SHA-256: recorded for this URL (645,695,005 bytes) in a 2026 download log found in
    # public code; MD5: the sum pinned by soundata (soundata/datasets/esc50.py), HEAR
    # (hearbenchmark/hear-preprocess) and Paddle (python/paddle/audio/datasets/esc50.py).
    # A download is accepted when it matches either pinned digest.
    "esc50": RemoteArchive(
        filename="ESC-50-master.zip",
        url="https://github.com/karolpiczak/ESC-50/archive/master.zip",
        extract_dir="ESC-50-master",
        sha256="805afc618aff80eff0641d51311647871fead5807da68bb18e43a27db47a79ce",
        md5="7771e4b9d86d0945acce719c7a59305a",
        index_file="meta/esc50.csv",
    ),
    # Zenodo record 1203745 publishes an MD5 only; the same sum is pinned by soundata
    # (soundata/datasets/urbansound8k.py) and Paddle (paddle/audio/datasets).
    "urbansound8k": RemoteArchive(
        filename="UrbanSound8K.tar.gz",
        url="https://zenodo.org/record/1203745/files/UrbanSound8K.tar.gz?download=1",
        extract_dir="UrbanSound8K",
        md5="9aa69802bbf37fb986f71ec1483a196e",
        index_file="metadata/UrbanSound8K.csv",
    ),
}


def get_data_home(data_home: str | os.PathLike | None = None) -> str:
    """Return the folder where sklaudio caches datasets, creating it if needed.

    By default this is ``$SKLAUDIO_DATA`` when that variable is set, else
    ``~/sklaudio_data``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Use this folder instead. ``~`` is expanded.

    Returns
    -------
    str
        The absolute path of the folder.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklaudio.datasets import get_data_home
    >>> home = get_data_home(os.path.join(tempfile.mkdtemp(), "cache"))
    >>> os.path.isdir(home)
    True
    """
    if data_home is None:
        data_home = os.environ.get("SKLAUDIO_DATA") or os.path.join("~", "sklaudio_data")
    data_home = os.path.abspath(os.path.expanduser(os.fspath(data_home)))
    if os.path.exists(data_home) and not os.path.isdir(data_home):
        raise NotADirectoryError(
            f"the data home {data_home!r} is a file, not a folder; pass another data_home "
            "(or set SKLAUDIO_DATA to a folder)"
        )
    os.makedirs(data_home, exist_ok=True)
    return data_home


def _manual_copy_hint(archive: RemoteArchive, target: Path, layout: str) -> str:
    return (
        f"To install it by hand, put the archive {archive.filename} (from {archive.url}) at "
        f"{os.fspath(target.parent / archive.filename)!r}: the next call verifies and unpacks "
        f"it. Or unpack it yourself and move its {archive.extract_dir!r} folder to "
        f"{os.fspath(target)!r}, so that:\n{layout.replace('ROOT', os.fspath(target))}"
    )


def _say(verbose, message: str) -> None:
    if verbose:
        print(f"sklaudio: {message}", file=sys.stderr, flush=True)


def _download_bar(verbose, total: str | None, name: str):
    """A tqdm bar of bytes on stderr (the total is the server's Content-Length), or
    ``None`` when quiet."""
    if not verbose:
        return None
    from tqdm import tqdm

    return tqdm(
        total=int(total) if total is not None and total.isdigit() else None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        leave=True,
        dynamic_ncols=True,
    )


def _download(
    archive: RemoteArchive, folder: Path, target: Path, layout: str, verbose=False
) -> Path:
    """Stream ``archive.url`` into a hidden temporary file in ``folder``."""
    fd, part = tempfile.mkstemp(prefix=f".{archive.filename}.", suffix=".part", dir=folder)
    part = Path(part)
    hint = _manual_copy_hint(archive, target, layout)
    try:
        request = urllib.request.Request(archive.url, headers={"User-Agent": "sklaudio"})
        try:
            response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OSError(
                f"could not download {archive.url} ({reason}); check the network "
                f"connection or proxy settings.\n{hint}"
            ) from exc
        expected = response.headers.get("Content-Length")
        received = 0
        bar = _download_bar(verbose, expected, archive.filename)
        with response, os.fdopen(fd, "wb") as out, bar if bar is not None else nullcontext():
            fd = None
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    raise OSError(
                        f"the download of {archive.url} broke off after {received} bytes "
                        f"({exc}); nothing was cached, try again.\n{hint}"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if expected is not None and expected.isdigit() and received != int(expected):
            raise OSError(
                f"the download of {archive.url} stopped at {received} of {expected} bytes; "
                f"nothing was cached, try again.\n{hint}"
            )
    except BaseException:
        if fd is not None:
            os.close(fd)
        part.unlink(missing_ok=True)
        raise
    return part


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, archive: RemoteArchive, verify: bool, hint: str, what=None) -> None:
    """Check ``path`` against the pinned digests; ``what`` names it (default: the download)."""
    what = what or f"{archive.filename} downloaded from {archive.url}"
    if not verify:
        return
    mismatches = []
    for algorithm in ("sha256", "md5"):
        expected = getattr(archive, algorithm)
        if expected is None:
            continue
        actual = _file_digest(path, algorithm)
        if actual == expected.lower():
            return
        mismatches.append(f"{algorithm.upper()} {actual}, expected {expected}")
    if mismatches:
        raise OSError(
            f"{what} has {'; '.join(mismatches)}: it is corrupt or incomplete, or the file "
            f"changed upstream. Nothing was cached.\n{hint}"
        )
    raise OSError(
        f"no checksum is pinned for {archive.url}, so its download cannot be verified; "
        f"pass verify=False to accept it unchecked.\n{hint}"
    )


_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_path(name: str, archive_name: str) -> PurePosixPath:
    """The relative path of an archive member, refusing ones that escape the folder."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if path.is_absolute() or _WINDOWS_DRIVE.match(posix):
        raise ValueError(f"refusing to extract {archive_name}: member {name!r} is an absolute path")
    if ".." in path.parts:
        raise ValueError(
            f"refusing to extract {archive_name}: member {name!r} has a '..' component "
            "(path traversal)"
        )
    return path


def _check_link(
    member: PurePosixPath, link: str, archive_name: str, relative_to_member: bool
) -> None:
    """Refuse a link whose target lies outside the extraction folder."""
    base = member.parent if relative_to_member else PurePosixPath()
    # POSIX rules on every platform (os.path would join and split with '\\' on Windows,
    # where a '..\\evil' target would not start with '../')
    posix = link.replace("\\", "/")
    target = posixpath.normpath(posixpath.join(base.as_posix(), posix))
    if posixpath.isabs(posix) or _WINDOWS_DRIVE.match(posix) or target.split("/")[0] == "..":
        raise ValueError(
            f"refusing to extract {archive_name}: link {os.fspath(member)!r} points to "
            f"{link!r}, outside the archive's folder"
        )


def _extract_zip(path: Path, dest: Path, archive_name: str) -> None:
    with zipfile.ZipFile(path) as zf:
        members = zf.infolist()
        for info in members:
            member = _member_path(info.filename, archive_name)
            if stat.S_ISLNK(info.external_attr >> 16):
                _check_link(member, zf.read(info).decode(), archive_name, True)
        # zipfile writes a link that stays inside as a small text file; no data set needs links
        for info in members:
            zf.extract(info, dest)


def _extract_tar(path: Path, dest: Path, archive_name: str) -> None:
    with tarfile.open(path) as tf:
        members = tf.getmembers()
        for info in members:
            member = _member_path(info.name, archive_name)
            if info.issym():
                _check_link(member, info.linkname, archive_name, True)
            elif info.islnk():
                _check_link(member, info.linkname, archive_name, False)
            elif not (info.isfile() or info.isdir()):
                raise ValueError(
                    f"refusing to extract {archive_name}: member {info.name!r} is a device or fifo"
                )
        if hasattr(tarfile, "data_filter"):
            # Python >= 3.11.4 (and security backports): also drops unsafe permission bits
            try:
                tf.extractall(dest, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise ValueError(f"refusing to extract {archive_name}: {exc}") from exc
        else:  # pragma: no cover - only on old patch releases
            tf.extractall(dest, members=members)  # members checked above


def _extract(path: Path, dest: Path, archive: RemoteArchive, hint: str) -> None:
    name = archive.filename
    lower = name.lower()
    try:
        if lower.endswith(".zip"):
            _extract_zip(path, dest, name)
        elif lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            _extract_tar(path, dest, name)
        else:
            raise ValueError(f"cannot tell how to unpack {name!r}: expected .zip or .tar[.gz]")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise OSError(
            f"{name} from {archive.url} is truncated or corrupt ({exc}); nothing was cached, "
            f"try again.\n{hint}"
        ) from exc


_LEFTOVER_AGE_S = 24 * 3600  # younger ones may belong to a fetch still running


def _remove_leftovers(folder: Path, archive: RemoteArchive) -> None:
    """Remove the hidden download and scratch folder of a fetch that was killed (Ctrl-C and
    errors clean up after themselves; SIGKILL or a crash cannot): a day old or more."""
    now = time.time()
    patterns = (f".{archive.filename}.*.part", f".{archive.extract_dir}.*")
    for leftover in (p for pattern in patterns for p in folder.glob(pattern)):
        try:
            if now - leftover.lstat().st_mtime < _LEFTOVER_AGE_S:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            logger.info("removed %s, left by an interrupted fetch", leftover)
        except OSError:
            pass  # another process removed it, or it is not ours to remove


def _fetch_archive(
    name: str,
    layout: str,
    data_home=None,
    download_if_missing: bool = True,
    verify: bool = True,
    verbose=False,
) -> Path:
    """Return the cached copy of ``ARCHIVES[name]``, downloading it when allowed."""
    archive = ARCHIVES[name]
    folder = Path(get_data_home(data_home)) / name
    target = folder / archive.extract_dir
    if target.is_dir():
        return target
    hint = _manual_copy_hint(archive, target, layout)
    # an archive the user put there (a machine without internet): verified, unpacked, kept
    local = folder / archive.filename
    if not local.is_file() and not download_if_missing:
        raise FileNotFoundError(
            f"{os.fspath(target)!r} does not exist and download_if_missing=False; pass "
            f"download_if_missing=True to download {archive.url}.\n{hint}"
        )

    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder, archive)
    if local.is_file():
        logger.info("unpacking %s", local)
        checked = "verifying and " if verify else ""
        _say(verbose, f"found {os.fspath(local)}; {checked}unpacking it")
        part = local
    else:
        logger.info("downloading %s to %s", archive.url, folder)
        _say(verbose, f"downloading {archive.url} into {os.fspath(folder)} (once)")
        part = _download(archive, folder, target, layout, verbose)
    scratch = Path(tempfile.mkdtemp(prefix=f".{archive.extract_dir}.", dir=folder))
    try:
        if verify:
            _say(verbose, f"checking the checksum of {archive.filename}")
        _verify(part, archive, verify, hint, None if part != local else repr(os.fspath(local)))
        _say(verbose, f"unpacking {archive.filename} ({_size(part)})")
        _extract(part, scratch, archive, hint)
        extracted = scratch / archive.extract_dir
        if not extracted.is_dir():
            raise OSError(
                f"{archive.filename} from {archive.url} holds no {archive.extract_dir!r} "
                f"folder; nothing was cached.\n{hint}"
            )
        if archive.index_file and not (extracted / archive.index_file).is_file():
            raise OSError(
                f"{archive.filename} from {archive.url} lacks {archive.index_file!r}; "
                f"nothing was cached.\n{hint}"
            )
        try:
            os.replace(extracted, target)
        except OSError:
            # another process may have finished the same download first
            if not target.is_dir():
                raise
    finally:
        if part != local:
            part.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    _say(verbose, f"cached in {os.fspath(target)}")
    return target


def _size(path: Path) -> str:
    n = path.stat().st_size
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def fetch_esc50(
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    *,
    verify: bool = True,
    on_error: str = "raise",
    verbose: bool = True,
) -> Bunch:
    """Load ESC-50, downloading, verifying and caching it on first use (~600 MB).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download the corpus when it is not cached yet; ``False`` raises
        :class:`FileNotFoundError` naming the expected folder instead.
    verify : bool, default=True
        Check the archive against its pinned checksum before unpacking it.
        ``False`` accepts whatever the server sends; use it only when the
        upstream archive changed and you trust its source.
    on_error : {'raise', 'skip'}, default='raise'
        Passed to the loader: what to do with a clip that is missing or has
        no readable audio header.
    verbose : bool, default=True
        On the first call, say on stderr what is downloaded, verified and
        unpacked, with a progress bar of the download. A cached copy is read
        without a word either way.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As returned by :func:`load_esc50`.

    Raises
    ------
    FileNotFoundError
        Not cached and ``download_if_missing=False``.
    OSError
        The download failed or does not match its checksum; the message says
        where to put a copy made by hand. Nothing is left in the cache.

    See Also
    --------
    load_esc50 : read a copy that is already on disk.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import fetch_esc50
    >>> fetch_esc50(tempfile.mkdtemp(), download_if_missing=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: '.../esc50/ESC-50-master' does not exist and download_if_missing=False; ...
    """
    check_on_error(on_error)
    root = _fetch_archive("esc50", ESC50_LAYOUT, data_home, download_if_missing, verify, verbose)
    return load_esc50(root, on_error=on_error)


def fetch_esc10(
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    *,
    verify: bool = True,
    on_error: str = "raise",
    verbose: bool = True,
) -> Bunch:
    """Load ESC-10, the 10-class subset of ESC-50, fetching ESC-50 on first use.

    ESC-10 is read from the ESC-50 archive (its ``esc10`` column), which is
    downloaded, verified and cached like :func:`fetch_esc50` does and shared
    with it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download the corpus when it is not cached yet; ``False`` raises
        :class:`FileNotFoundError` naming the expected folder instead.
    verify : bool, default=True
        Check the archive against its pinned checksum before unpacking it.
        ``False`` accepts whatever the server sends; use it only when the
        upstream archive changed and you trust its source.
    on_error : {'raise', 'skip'}, default='raise'
        Passed to the loader: what to do with a clip that is missing or has
        no readable audio header.
    verbose : bool, default=True
        On the first call, say on stderr what is downloaded, verified and
        unpacked, with a progress bar of the download. A cached copy is read
        without a word either way.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As returned by :func:`load_esc10` on the ESC-50 layout.

    Raises
    ------
    FileNotFoundError
        Not cached and ``download_if_missing=False``.
    OSError
        The download failed or does not match its checksum; the message says
        where to put a copy made by hand. Nothing is left in the cache.

    See Also
    --------
    load_esc10 : read a copy that is already on disk, in either layout.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import fetch_esc10
    >>> fetch_esc10(tempfile.mkdtemp(), download_if_missing=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: '.../esc50/ESC-50-master' does not exist and download_if_missing=False; ...
    """
    check_on_error(on_error)
    root = _fetch_archive("esc50", ESC50_LAYOUT, data_home, download_if_missing, verify, verbose)
    return load_esc10(root, on_error=on_error)


def fetch_urbansound8k(
    data_home: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    *,
    verify: bool = True,
    on_error: str = "raise",
    verbose: bool = True,
) -> Bunch:
    """Load UrbanSound8K, downloading, verifying and caching it on first use (~6 GB).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download the corpus when it is not cached yet; ``False`` raises
        :class:`FileNotFoundError` naming the expected folder instead.
    verify : bool, default=True
        Check the archive against its pinned checksum before unpacking it.
        ``False`` accepts whatever the server sends; use it only when the
        upstream archive changed and you trust its source.
    on_error : {'raise', 'skip'}, default='raise'
        Passed to the loader: what to do with a clip that is missing or has
        no readable audio header.
    verbose : bool, default=True
        On the first call, say on stderr what is downloaded, verified and
        unpacked, with a progress bar of the download. A cached copy is read
        without a word either way.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        As returned by :func:`load_urbansound8k`.

    Raises
    ------
    FileNotFoundError
        Not cached and ``download_if_missing=False``.
    OSError
        The download failed or does not match its checksum; the message says
        where to put a copy made by hand. Nothing is left in the cache.

    See Also
    --------
    load_urbansound8k : read a copy that is already on disk.

    Examples
    --------
    >>> import tempfile
    >>> from sklaudio.datasets import fetch_urbansound8k
    >>> fetch_urbansound8k(tempfile.mkdtemp(), download_if_missing=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: '.../urbansound8k/UrbanSound8K' does not exist and ...
    """
    check_on_error(on_error)
    root = _fetch_archive(
        "urbansound8k", URBANSOUND8K_LAYOUT, data_home, download_if_missing, verify, verbose
    )
    return load_urbansound8k(root, on_error=on_error)
