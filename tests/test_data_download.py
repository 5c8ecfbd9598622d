"""Verified fetching: mirror copies, checksum/truncation errors, unsafe archives, downloads."""

import gzip
import hashlib
import http.server
import shutil
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from spattack.data import ChecksumError, MissingRawFileError, UnsafeArchiveError, fetch
from spattack.data.datasets import ML_1M, Archive, DatasetSpec, RawFile
from spattack.data.download import sha256_of

GOOD = b"1\t2\t3\t4\n5\t6\t7\t8\n"
TINY = DatasetSpec(name="tiny", files=(RawFile("x.data", sha256=hashlib.sha256(GOOD).hexdigest(), size=len(GOOD)),))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _mirror_with(tmp_path, name, content, dataset="tiny") -> Path:
    folder = tmp_path / "mirror" / dataset
    folder.mkdir(parents=True)
    (folder / name).write_bytes(content)
    return tmp_path / "mirror"


def test_mirror_copy_is_verified_and_recorded(tmp_path):
    mirror = _mirror_with(tmp_path, "x.data", GOOD)
    got = fetch(TINY, tmp_path / "out", mirror=mirror)
    assert got["x.data"].read_bytes() == GOOD
    manifest = (tmp_path / "out" / "MANIFEST.tsv").read_text().splitlines()
    assert manifest[1].split("\t")[:4] == ["x.data", str(len(GOOD)), TINY.files[0].sha256, "2"]
    assert _leftovers(tmp_path / "out") == ["MANIFEST.tsv", "x.data"]


def test_real_ml100k_from_mirror(mirror, tmp_path):
    got = fetch("ml-100k", tmp_path / "raw", mirror=mirror)
    assert sha256_of(got["u.data"]) == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"


def test_checksum_mismatch_names_file_hashes_and_fix_and_leaves_nothing(tmp_path):
    bad = b"1\t2\t3\t4\n5\t6\t7\t9\n"
    mirror = _mirror_with(tmp_path, "x.data", bad)
    with pytest.raises(ChecksumError) as err:
        fetch(TINY, tmp_path / "out", mirror=mirror)
    msg = str(err.value)
    assert "x.data" in msg and TINY.files[0].sha256 in msg and hashlib.sha256(bad).hexdigest() in msg
    assert "Fix:" in msg and str(mirror / "tiny" / "x.data") in msg
    assert _leftovers(tmp_path / "out") == []  # no x.data, no temp file


def test_truncated_file_is_reported_as_truncated(tmp_path):
    mirror = _mirror_with(tmp_path, "x.data", GOOD[:-5])
    with pytest.raises(ChecksumError, match=r"TRUNCATED: 11 of 16 bytes"):
        fetch(TINY, tmp_path / "out", mirror=mirror)
    assert _leftovers(tmp_path / "out") == []


def test_bad_existing_output_is_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.data").write_bytes(b"stale")
    fetch(TINY, tmp_path / "out", mirror=_mirror_with(tmp_path, "x.data", GOOD))
    assert (tmp_path / "out" / "x.data").read_bytes() == GOOD


def test_gzipped_mirror_file_is_accepted(tmp_path):
    fetch(TINY, tmp_path / "out", mirror=_mirror_with(tmp_path, "x.data.gz", gzip.compress(GOOD)))
    assert (tmp_path / "out" / "x.data").read_bytes() == GOOD


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return path


TINY_ZIP = DatasetSpec(name="tiny", files=TINY.files,
                       archive=Archive(url="http://127.0.0.1:1/tiny.zip", filename="tiny.zip", known_hash=None))


def test_archive_in_mirror_is_extracted(tmp_path):
    _zip(tmp_path / "mirror" / "tiny" / "tiny.zip", {"tiny/README": b"hi", "tiny/x.data": GOOD})
    fetch(TINY_ZIP, tmp_path / "out", mirror=tmp_path / "mirror")
    assert _leftovers(tmp_path / "out") == ["MANIFEST.tsv", "x.data"]


@pytest.mark.parametrize("evil", ["../evil.txt", "tiny/../../evil.txt", "/tmp/spattack-evil.txt", "C:/evil.txt",
                                  "symlink"])
def test_unsafe_archive_member_is_rejected(tmp_path, evil):
    members = {"tiny/x.data": GOOD}
    if evil != "symlink":
        members[evil] = b"pwned"
    _zip(tmp_path / "mirror" / "tiny" / "tiny.zip", members, symlink="tiny/link" if evil == "symlink" else None)
    with pytest.raises(UnsafeArchiveError, match="unsafe"):
        fetch(TINY_ZIP, tmp_path / "work" / "out", mirror=tmp_path / "mirror")
    assert _leftovers(tmp_path / "work" / "out") == []
    assert not (tmp_path / "work" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_missing_ml1m_names_the_file_and_folder(tmp_path):
    """A mirror of its own: the shared one now holds the complete ratings.dat."""
    mirror = _mirror_with(tmp_path, "ratings.PARTIAL-users-1-2999.dat.gz", b"not used", dataset="ml-1m")
    with pytest.raises(MissingRawFileError) as err:
        fetch("ml-1m", tmp_path / "out", mirror=mirror)
    msg = str(err.value)
    assert str(mirror / "ml-1m" / "ratings.dat") in msg and str(mirror / "ml-1m" / "ml-1m.zip") in msg
    assert "PARTIAL" in msg


@pytest.fixture(scope="module")
def ml1m_partial(mirror) -> bytes:
    with gzip.open(mirror / "ml-1m" / "ratings.PARTIAL-users-1-2999.dat.gz") as f:
        return f.read()


def test_ml1m_partial_or_crlf_copy_is_refused(ml1m_partial, tmp_path):
    """The users 1-2999 prefix is refused as truncated; a copy with Windows line endings
    (one byte more per line) gets a hint on how to restore the original bytes."""
    mirror = _mirror_with(tmp_path, "ratings.dat", ml1m_partial, dataset="ml-1m")
    with pytest.raises(ChecksumError, match=r"TRUNCATED: 11,908,773 of 24,594,131 bytes"):
        fetch("ml-1m", tmp_path / "out", mirror=mirror)
    assert _leftovers(tmp_path / "out") == []

    line = b"6040::1::5::978300760\n"
    lines, rest = divmod(ML_1M.ratings.size - len(ml1m_partial), len(line))
    same_size = ml1m_partial + line * lines + (b"9" * (rest - 1) + b"\n" if rest else b"")
    (mirror / "ml-1m" / "ratings.dat").write_bytes(same_size.replace(b"\n", b"\r\n"))
    with pytest.raises(ChecksumError, match="Windows line endings"):
        fetch("ml-1m", tmp_path / "out", mirror=mirror)


def test_steam_without_source_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr("spattack.data.download.shutil.which", lambda name: None)  # no kaggle CLI
    with pytest.raises(MissingRawFileError) as err:
        fetch("steam", tmp_path / "out", mirror=None, steam_url=None)
    msg = str(err.value)
    assert "steam-200k.csv" in msg and "<mirror>/steam/steam-200k.csv" in msg and "steam_url" in msg
    assert "kaggle" in msg


@pytest.fixture
def http_dir(tmp_path):
    """A folder served over HTTP on localhost (for real pooch downloads without network)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_with_pooch_is_hash_checked_and_cached(http_dir, tmp_path, monkeypatch):
    root, url = http_dir
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    archive = _zip(root / "tiny.zip", {"tiny/x.data": GOOD})
    sha = sha256_of(archive)
    spec = DatasetSpec(name="tiny", files=TINY.files,
                       archive=Archive(url=f"{url}/tiny.zip", filename="tiny.zip", known_hash=f"sha256:{sha}"))
    fetch(spec, tmp_path / "out")
    assert (tmp_path / "out" / "x.data").read_bytes() == GOOD
    archive.unlink()  # the second fetch must come from the cache
    shutil.rmtree(tmp_path / "out")
    fetch(spec, tmp_path / "out")
    assert (tmp_path / "out" / "x.data").read_bytes() == GOOD

    wrong = DatasetSpec(name="tiny", files=TINY.files,
                        archive=Archive(url=f"{url}/other.zip", filename="other.zip", known_hash="sha256:" + "0" * 64))
    _zip(root / "other.zip", {"x.data": GOOD})
    with pytest.raises(ChecksumError, match="other.zip"):
        fetch(wrong, tmp_path / "out2")
    assert _leftovers(tmp_path / "out2") == [] and not (tmp_path / "cache" / "other.zip").exists()


def test_steam_url_download(http_dir, tmp_path, monkeypatch):
    root, url = http_dir
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    _zip(root / "steam-video-games.zip", {"x.data": GOOD})
    spec = DatasetSpec(name="tiny", files=TINY.files, kaggle="someone/steam-video-games")
    fetch(spec, tmp_path / "out", steam_url=f"{url}/steam-video-games.zip")
    assert (tmp_path / "out" / "x.data").read_bytes() == GOOD


def test_unreachable_url_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingRawFileError, match=r"could not download .*put x.data at <mirror>/tiny/x.data"):
        fetch(TINY_ZIP, tmp_path / "out")
