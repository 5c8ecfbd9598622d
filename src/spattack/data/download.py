"""Obtain the raw files of a dataset, verified, from a mirror folder or the canonical source.

`fetch` is the only entry point. Every file is written under a temporary name in the
destination folder, hashed while it is written, and renamed to its final name only once
its checksum has passed. A bad copy therefore never lies in the destination under its
real name.

Sources, in order:
- `mirror` given: `<mirror>/<dataset>/<file>` (also `<file>.gz`), else an archive in
  `<mirror>/<dataset>/` (`ml-100k.zip`, `ml-1m.zip`, `steam-video-games.zip`). Nothing
  is downloaded when a mirror is given.
- no mirror: the canonical archive via pooch (hash-checked, cached under
  `$SPATTACK_CACHE` or pooch's user cache folder); for Steam, which Kaggle serves only
  to logged-in users, an explicit `steam_url`, or the `kaggle` CLI when it is installed.

A folder's `MANIFEST.tsv` records each file's size, sha256, line count and source.

Nothing is written past a known size: every copy, decompression and download stops as
soon as it would grow past the size its output must have (a raw file's `RawFile.size`, a
zip member's declared size, an archive's `Archive.size`, else `archive_limit`), raises
`SizeLimitError` and removes what it wrote. A zip bomb or an endless download therefore
costs at most that many bytes of disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO, Iterable

from ..runio import atomic_path, atomic_write_text
from .datasets import Archive, DatasetSpec, RawFile, get_dataset

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MANIFEST = "MANIFEST.tsv"


class DataError(RuntimeError):
    """A raw data file could not be obtained or failed verification."""


class ChecksumError(DataError):
    """A file's content is not the expected one (wrong file, corrupted or truncated)."""


class MissingRawFileError(DataError):
    """A needed raw file is available from none of the configured sources."""


class UnsafeArchiveError(DataError):
    """An archive member would be written outside the extraction folder."""


class SizeLimitError(ChecksumError):
    """A file grew past the size it must have while it was copied, inflated or downloaded."""


@dataclass
class Digest:
    """Size, sha256 and newline count of a byte stream."""

    size: int
    sha256: str
    lines: int


@dataclass
class FetchedFile:
    """A verified raw file and where it came from."""

    path: Path
    digest: Digest
    source: str


# ---------------------------------------------------------------------------------------
# hashing and verified writing


def _digest_stream(chunks: Iterable[bytes], sink: BinaryIO | None = None) -> Digest:
    """Hash `chunks` (writing them to `sink` if given) in one pass."""
    full = hashlib.sha256()
    size = lines = 0
    for chunk in chunks:
        if sink is not None:
            sink.write(chunk)
        full.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
    return Digest(size, full.hexdigest(), lines)


def _read_chunks(stream: BinaryIO) -> Iterable[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _too_large(name: str, source: str, limit: int, seen: int) -> SizeLimitError:
    return SizeLimitError(
        f"{name} from {source} is larger than the {limit:,} bytes it must have: stopped after "
        f"reading {seen:,} bytes, and nothing was kept. It is not the genuine {name} (a "
        f"decompression bomb or a wrong file). Fix: replace {source} with a genuine copy, or remove "
        f"it so the canonical source is used."
    )


def _bounded(chunks: Iterable[bytes], limit: int | None, name: str, source: str) -> Iterable[bytes]:
    """`chunks` unchanged while their total stays within `limit` bytes (None: no limit).

    The chunk that would take the total past `limit` is not passed on: SizeLimitError is
    raised instead, so a consumer that writes what it gets never writes more than `limit`."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise _too_large(name, source, limit, seen)
        yield chunk


class _LimitedReader(io.RawIOBase):
    """A readable binary stream over `stream` that raises SizeLimitError as soon as more
    than `limit` bytes have been read from it."""

    def __init__(self, stream: BinaryIO, limit: int, name: str, source: str):
        self.stream, self.limit, self.name, self.source, self.seen = stream, limit, name, source, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.stream.readinto(buffer)
        self.seen += n
        if self.seen > self.limit:
            raise _too_large(self.name, self.source, self.limit, self.seen)
        return n

    def close(self) -> None:
        self.stream.close()
        super().close()


def open_gzip_limited(path: str | Path, limit: int, name: str) -> BinaryIO:
    """The decompressed content of the gzip file `path`, for reading: a read that takes it
    past `limit` bytes (the size of the genuine `name`) raises SizeLimitError."""
    return io.BufferedReader(_LimitedReader(gzip.open(path, "rb"), limit, name, str(path)), CHUNK)


def sha256_of(path: str | Path) -> str:
    """sha256 hex digest of a file."""
    with open(path, "rb") as fh:
        return _digest_stream(_read_chunks(fh)).sha256


def _check(raw: RawFile, digest: Digest, source: str) -> None:
    """Raise ChecksumError unless `digest` is the genuine `raw` file."""
    if digest.sha256 == raw.sha256 and (raw.size is None or digest.size == raw.size):
        return
    size_note = ""
    if raw.size is not None and digest.size == raw.size + digest.lines:
        size_note = (f" It has one byte more per line than the genuine file: Windows line endings? "
                     f"`tr -d '\\r' < FILE > {raw.name}` restores the original.")
    elif raw.size is not None and digest.size < raw.size:
        size_note = f" The file is TRUNCATED: {digest.size:,} of {raw.size:,} bytes."
    elif raw.size is not None and digest.size != raw.size:
        size_note = f" Its size is {digest.size:,} bytes, expected {raw.size:,}."
    raise ChecksumError(
        f"checksum mismatch for {raw.name} from {source}: expected sha256 {raw.sha256}, "
        f"got {digest.sha256}.{size_note} Fix: replace {source} with a genuine copy of {raw.name} "
        f"(the paper's datasets: see shared/data/PROVENANCE.md; your own: the sha256 in its "
        f"DatasetSpec must be that of your file, `sha256sum {raw.name}`), or remove it so the "
        f"canonical source is used, where the dataset has one."
    )


def _write_verified(chunks: Iterable[bytes], target: Path, raw: RawFile, source: str,
                    limit: int | None = None) -> FetchedFile:
    """Stream `chunks` to a temp file beside `target`, verify, then rename into place.

    Writing stops with SizeLimitError once the stream passes `raw.size` (or `limit`, when
    given and smaller). On any failure the temp file is removed and `target` is left
    untouched."""
    if raw.size is not None:
        limit = raw.size if limit is None else min(limit, raw.size)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as sink:
            digest = _digest_stream(_bounded(chunks, limit, raw.name, source), sink)
        _check(raw, digest, source)
    log.info("%s: %s bytes, sha256 %s, verified (from %s)", target, f"{digest.size:,}", digest.sha256, source)
    return FetchedFile(target, digest, source)


def _verify_existing(path: Path, raw: RawFile) -> FetchedFile | None:
    """A FetchedFile for an already present, valid `path`; None if it is absent or invalid."""
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        digest = _digest_stream(_read_chunks(fh))
    try:
        _check(raw, digest, str(path))
    except ChecksumError as err:
        log.warning("existing %s is not valid and will be replaced: %s", path, err)
        return None
    return FetchedFile(path, digest, "already present")


# ---------------------------------------------------------------------------------------
# archives


def _member_is_unsafe(info: zipfile.ZipInfo, dest: Path) -> str | None:
    """Why extracting `info` into `dest` would be unsafe, or None if it is safe."""
    name = info.filename
    if "\x00" in name:
        return "its name contains a NUL byte"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return "it has an absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        return "its path contains '..'"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "it is a symbolic link"
    root = dest.resolve()
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        return "it resolves outside the extraction folder"
    return None


def check_archive(archive: str | Path, dest: str | Path) -> list[zipfile.ZipInfo]:
    """Members of zip `archive`, after checking that none escapes `dest` when extracted.

    Raises UnsafeArchiveError naming the first offending member (absolute paths, `..`
    components, symbolic links, anything resolving outside `dest`)."""
    dest = Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as err:
        raise ChecksumError(f"{archive} is not a readable zip archive ({err}); delete it and fetch it again") from err
    for info in infos:
        why = _member_is_unsafe(info, dest)
        if why:
            raise UnsafeArchiveError(
                f"refusing to extract {archive}: member {info.filename!r} is unsafe ({why}). "
                f"Obtain the archive from its canonical source."
            )
    return infos


def extract_verified(archive: str | Path, raw: RawFile, dest: str | Path) -> FetchedFile:
    """Extract the member named `raw.name` (in any folder) of zip `archive` into `dest`, verified.

    A member that declares a size other than `raw.size` is refused before anything is
    written; inflating stops as soon as the output passes the declared size."""
    dest = Path(dest)
    infos = check_archive(archive, dest)
    matches = [i for i in infos if not i.is_dir() and PurePosixPath(i.filename).name == raw.name
               and not i.filename.startswith("__MACOSX/")]
    if len(matches) != 1:
        found = "no" if not matches else f"{len(matches)}"
        raise MissingRawFileError(f"{archive} has {found} member named {raw.name}; members: "
                                  f"{', '.join(i.filename for i in infos[:20])}")
    member_info = matches[0]
    source = f"{archive}!{member_info.filename}"
    if raw.size is not None and member_info.file_size > raw.size:
        raise SizeLimitError(
            f"{source} declares {member_info.file_size:,} bytes, more than the {raw.size:,} bytes "
            f"{raw.name} must have; nothing was extracted (a decompression bomb or a wrong file). "
            f"Fix: obtain the archive from its canonical source.")
    if raw.size is not None and member_info.file_size < raw.size:
        raise ChecksumError(
            f"{source} declares {member_info.file_size:,} bytes, fewer than the {raw.size:,} bytes "
            f"{raw.name} must have (TRUNCATED); nothing was extracted. Fix: obtain the archive "
            f"from its canonical source.")
    with zipfile.ZipFile(archive) as zf, zf.open(member_info) as member:
        try:
            return _write_verified(_read_chunks(member), dest / raw.name, raw, source, limit=member_info.file_size)
        except zipfile.BadZipFile as err:  # CRC error of a corrupted member
            raise ChecksumError(f"{source} is corrupted ({err}); fetch the archive again") from err


def _check_archive_hash(path: Path, archive: Archive | None) -> None:
    """Raise ChecksumError if a local canonical archive does not have its known hash."""
    if archive is None or archive.known_hash is None or path.name != archive.filename:
        return
    alg, expected = archive.known_hash.split(":", 1)
    h = hashlib.new(alg)
    with open(path, "rb") as fh:
        for chunk in _read_chunks(fh):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise ChecksumError(
            f"checksum mismatch for archive {path}: expected {archive.known_hash}, got {alg}:{h.hexdigest()}. "
            f"Fix: replace it with the file from {archive.url}."
        )


def _archive_names(spec: DatasetSpec) -> list[str]:
    names = [spec.archive.filename] if spec.archive else []
    if spec.kaggle:
        names.append(spec.kaggle.split("/")[1] + ".zip")
    return names


# ---------------------------------------------------------------------------------------
# sources


def _where_to_put(spec: DatasetSpec, raw: RawFile, mirror: Path | None) -> str:
    folder = (mirror / spec.name) if mirror is not None else Path("<mirror>") / spec.name
    options = [f"{folder / raw.name}"] + [f"{folder / a}" for a in _archive_names(spec)]
    return " or ".join(options) + (
        "" if mirror is not None else " and set the config key `mirror` to that <mirror> folder"
    )


def _from_mirror(spec: DatasetSpec, raw: RawFile, mirror: Path, dest: Path) -> FetchedFile:
    folder = mirror / spec.name
    plain, gz = folder / raw.name, folder / (raw.name + ".gz")
    if plain.is_file():
        if raw.size is not None and plain.stat().st_size != raw.size:
            with open(plain, "rb") as fh:  # in place, to say what is wrong with it; nothing is copied
                _check(raw, _digest_stream(_read_chunks(fh)), str(plain))
        with open(plain, "rb") as fh:
            return _write_verified(_read_chunks(fh), dest / raw.name, raw, str(plain))
    if gz.is_file():
        with gzip.open(gz, "rb") as fh:
            try:
                return _write_verified(_read_chunks(fh), dest / raw.name, raw, str(gz))
            except (OSError, EOFError) as err:
                raise ChecksumError(f"{gz} is not a valid gzip file ({err}); replace it") from err
    for name in _archive_names(spec):
        archive = folder / name
        if archive.is_file():
            _check_archive_hash(archive, spec.archive)
            return extract_verified(archive, raw, dest)
    extra = ""
    partial = sorted(p.name for p in folder.glob("*PARTIAL*")) if folder.is_dir() else []
    if partial:
        extra = (f" ({', '.join(partial)} there is a partial file, never used for experiments; the "
                 f"complete {raw.name} is needed.)")
    source = (f", or set `mirror: null` to download {spec.archive.url}" if spec.archive
              else ", or set `mirror: null` to download it" if spec.kaggle
              else f" ({spec.name} has no download source in its DatasetSpec)")
    raise MissingRawFileError(
        f"{spec.name}: {raw.name} is not in the mirror folder {folder}.{extra} "
        f"Fix: put it at {_where_to_put(spec, raw, mirror)}{source}."
    )


def cache_dir() -> Path:
    """Where downloads are cached: $SPATTACK_CACHE, else pooch's per-user cache folder."""
    env = os.environ.get("SPATTACK_CACHE")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("spattack"))


def archive_limit(spec: DatasetSpec) -> int:
    """Bytes an archive of `spec` may have: `spec.archive.size` when known; otherwise (a zip
    from `steam_url` or the Kaggle CLI, which may be packed differently) twice the raw files'
    total size plus 1 MiB, room for them stored uncompressed beside as much of other members."""
    if spec.archive is not None and spec.archive.size is not None:
        return spec.archive.size
    return 2 * sum(f.size or 0 for f in spec.files) + CHUNK


class _LimitedWriter:
    """A binary file that refuses, with SizeLimitError, a write that would take it past `limit` bytes."""

    def __init__(self, sink: BinaryIO, limit: int, name: str, source: str):
        self.sink, self.limit, self.name, self.source, self.written = sink, limit, name, source, 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.limit:
            raise _too_large(self.name, self.source, self.limit, self.written + len(data))
        self.written += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


class _LimitedDownloader:
    """A pooch downloader (HTTP, FTP, ... as pooch chooses for the URL) that stops a
    download as soon as it passes `limit` bytes. pooch downloads to a temporary file and
    deletes it when the downloader raises."""

    def __init__(self, limit: int, name: str):
        self.limit, self.name = limit, name

    def __call__(self, url: str, output_file, pooch_obj, check_only: bool = False):
        import pooch

        inner = pooch.downloaders.choose_downloader(url, progressbar=False)
        if check_only:
            return inner(url, output_file, pooch_obj, check_only=True)
        with open(output_file, "w+b") as sink:
            inner(url, _LimitedWriter(sink, self.limit, self.name, url), pooch_obj)
        return None


def _retrieve(url: str, known_hash: str | None, fname: str, spec: DatasetSpec, raw: RawFile,
              limit: int) -> Path:
    """Download `url` into the cache as `fname` (pooch; hash-checked when `known_hash` is
    given), stopping with SizeLimitError once it passes `limit` bytes."""
    import pooch

    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=fname, path=cache_dir(), progressbar=False,
                                   downloader=_LimitedDownloader(limit, fname)))
    except DataError:
        raise
    except ValueError as err:  # pooch's hash mismatch (the bad download is not kept)
        raise ChecksumError(f"download of {url} failed its checksum: {err}. Try again later or "
                            f"put the file at {_where_to_put(spec, raw, None)}.") from err
    except Exception as err:  # network errors of requests/urllib
        raise MissingRawFileError(
            f"{spec.name}: could not download {url} ({type(err).__name__}: {err}). Without network "
            f"access, put {raw.name} at {_where_to_put(spec, raw, None)}."
        ) from err


def _steam_via_kaggle(spec: DatasetSpec, raw: RawFile, dest: Path) -> FetchedFile | None:
    """Download Steam with the kaggle CLI; None when the CLI is not installed."""
    kaggle = shutil.which("kaggle")
    if kaggle is None:
        return None
    target_dir = cache_dir() / "kaggle"
    target_dir.mkdir(parents=True, exist_ok=True)
    name = spec.kaggle.split("/")[1] + ".zip"
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".download-") as partial:
        proc = _run_bounded([kaggle, "datasets", "download", spec.kaggle, "-p", partial], Path(partial),
                            archive_limit(spec), name, f"`kaggle datasets download {spec.kaggle}`")
        if (Path(partial) / name).is_file():
            os.replace(Path(partial) / name, target_dir / name)
    archive = target_dir / name
    if proc.returncode != 0 or not archive.is_file():
        raise MissingRawFileError(
            f"steam: `kaggle datasets download {spec.kaggle}` failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}. Configure the Kaggle CLI credentials "
            f"(see https://www.kaggle.com/docs/api), or put {raw.name} at {_where_to_put(spec, raw, None)}."
        )
    return extract_verified(archive, raw, dest)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _run_bounded(cmd: list[str], folder: Path, limit: int, name: str, what: str,
                 poll_s: float = 0.2) -> subprocess.CompletedProcess:
    """Run `cmd`, which writes into the empty `folder`; kill it and raise SizeLimitError as
    soon as the folder holds more than `limit` bytes (checked every `poll_s` seconds and at
    the end). The caller removes the folder."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            out, err = proc.communicate(timeout=poll_s)
            done = True
        except subprocess.TimeoutExpired:
            done = False
        size = _folder_size(folder)
        if size > limit:
            proc.kill()
            proc.communicate()
            raise _too_large(name, what, limit, size)
        if done:
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _download(spec: DatasetSpec, raw: RawFile, dest: Path, steam_url: str | None) -> FetchedFile:
    if spec.archive is not None:
        archive = _retrieve(spec.archive.url, spec.archive.known_hash, spec.archive.filename, spec, raw,
                            archive_limit(spec))
        return extract_verified(archive, raw, dest)
    if steam_url:
        name = steam_url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or raw.name
        if name.lower().endswith(".zip"):
            archive = _retrieve(steam_url, None, name, spec, raw, archive_limit(spec))
            return extract_verified(archive, raw, dest)
        path = _retrieve(steam_url, f"sha256:{raw.sha256}", raw.name, spec, raw,
                         raw.size if raw.size is not None else archive_limit(spec))
        with open(path, "rb") as fh:
            return _write_verified(_read_chunks(fh), dest / raw.name, raw, steam_url)
    if spec.kaggle is None:
        raise MissingRawFileError(
            f"{spec.name}: its DatasetSpec has no download source (no `archive`, no `kaggle`). "
            f"Fix: put {raw.name} at {_where_to_put(spec, raw, None)} and set the config key "
            f"`mirror` to that folder's parent, or give the DatasetSpec an `archive`.")
    fetched = _steam_via_kaggle(spec, raw, dest)
    if fetched is not None:
        return fetched
    raise MissingRawFileError(
        f"{spec.name}: there is no public direct download for {raw.name} (Kaggle dataset "
        f"{spec.kaggle}, {spec.homepage}, needs a login). Fix: download it yourself and put "
        f"{raw.name} at {_where_to_put(spec, raw, None)}; or set the config key `steam_url` to a "
        f"URL serving steam-200k.csv or steam-video-games.zip; or install and configure the "
        f"`kaggle` CLI."
    )


def _write_manifest(dest: Path, fetched: list[FetchedFile]) -> None:
    lines = ["file\tbytes\tsha256\tlines\tsource"]
    lines += [f"{f.path.name}\t{f.digest.size}\t{f.digest.sha256}\t{f.digest.lines}\t{f.source}"
              for f in fetched]
    atomic_write_text(dest / MANIFEST, "\n".join(lines) + "\n")


def fetch(dataset: str | DatasetSpec, dest_dir: str | Path, mirror: str | Path | None = None,
          steam_url: str | None = None) -> dict[str, Path]:
    """Put the verified raw files of `dataset` into `dest_dir`; return {file name: path}.

    With `mirror`, files are copied from `<mirror>/<dataset>/` (a file, its `.gz`, or the
    dataset's archive) and nothing is downloaded. Without it the canonical archive is
    downloaded with pooch (cached, hash-checked); Steam needs `steam_url` or the kaggle CLI.
    Files already in `dest_dir` that pass verification are kept.

    Raises ChecksumError (wrong/truncated file; nothing is left under the real name),
    SizeLimitError (a ChecksumError: a copy, decompression or download passed the size its
    output must have; it was stopped there and nothing of it is left),
    MissingRawFileError (no source has the file; the message says where to put it) and
    UnsafeArchiveError (an archive member would escape `dest_dir`).
    """
    spec = get_dataset(dataset)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    mirror_path = Path(mirror) if mirror is not None else None
    fetched = []
    for raw in spec.files:
        got = _verify_existing(dest / raw.name, raw)
        if got is None:
            if mirror_path is not None:
                got = _from_mirror(spec, raw, mirror_path, dest)
            else:
                got = _download(spec, raw, dest, steam_url)
        fetched.append(got)
    _write_manifest(dest, fetched)
    return {f.path.name: f.path for f in fetched}
