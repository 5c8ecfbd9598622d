"""Verified fetching: mirror copies, checksum/truncation errors, unsafe archives, downloads."""

import gzip
import hashlib
import http.server
import itertools
import re
import shutil
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from spattack.data import ChecksumError, MissingRawFileError, SizeLimitError, UnsafeArchiveError, download, fetch
from spattack.data.datasets import ML_1M, ML_100K, Archive, DatasetSpec, RawFile
from spattack.data.download import CHUNK, sha256_of

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
    server.handle_error = lambda request, address: None  # a client that stops reading (a refused download)
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


# --- bombs: every copy, decompression and download stops at the size its output must have

ZEROS = b"\0" * (4 << 20)  # 4 MiB that compress to a few KiB


def _stopped_after(err) -> int:
    return int(re.search(r"stopped after reading ([\d,]+) bytes", str(err.value)).group(1).replace(",", ""))


def test_zip_member_declaring_more_than_the_known_size_is_not_extracted(tmp_path):
    _zip(tmp_path / "mirror" / "tiny" / "tiny.zip", {"tiny/x.data": ZEROS})
    with pytest.raises(SizeLimitError) as err:
        fetch(TINY_ZIP, tmp_path / "out", mirror=tmp_path / "mirror")
    msg = str(err.value)
    assert "tiny.zip!tiny/x.data" in msg and f"{len(ZEROS):,} bytes" in msg and "16 bytes" in msg
    assert _leftovers(tmp_path / "out") == []


def test_zip_member_declaring_fewer_bytes_is_refused_as_truncated(tmp_path):
    _zip(tmp_path / "mirror" / "tiny" / "tiny.zip", {"tiny/x.data": GOOD[:-4]})
    with pytest.raises(ChecksumError, match="TRUNCATED"):
        fetch(TINY_ZIP, tmp_path / "out", mirror=tmp_path / "mirror")
    assert _leftovers(tmp_path / "out") == []


def test_gzip_bomb_in_the_mirror_stops_within_one_chunk(tmp_path):
    mirror = _mirror_with(tmp_path, "x.data.gz", gzip.compress(ZEROS))
    with pytest.raises(SizeLimitError, match=r"x\.data from .*x\.data\.gz is larger than the 16 bytes") as err:
        fetch(TINY, tmp_path / "out", mirror=mirror)
    assert _stopped_after(err) <= CHUNK < len(ZEROS)
    assert _leftovers(tmp_path / "out") == []


def test_oversized_plain_mirror_file_is_refused_without_copying(tmp_path, monkeypatch):
    mirror = _mirror_with(tmp_path, "x.data", GOOD * 1000)
    monkeypatch.setattr(download, "_write_verified", lambda *a, **k: pytest.fail("copied an oversized file"))
    with pytest.raises(ChecksumError, match=r"Its size is 16,000 bytes, expected 16"):
        fetch(TINY, tmp_path / "out", mirror=mirror)
    assert _leftovers(tmp_path / "out") == []


def test_every_write_stops_at_the_known_size_even_on_an_endless_stream(tmp_path):
    """The one sink all copies, inflations and downloads go through: a source that grows
    (or never ends) is cut at the first chunk past the size, and nothing stays."""
    read = []
    endless = (read.append(1) or b"x" * 5 for _ in itertools.count())
    with pytest.raises(SizeLimitError, match=r"x\.data from growing is larger than the 16 bytes") as err:
        download._write_verified(endless, tmp_path / "out" / "x.data", TINY.files[0], "growing")
    assert _stopped_after(err) == 20 and len(read) == 4
    assert _leftovers(tmp_path / "out") == []


def test_download_past_the_archive_size_is_stopped_and_not_cached(http_dir, tmp_path, monkeypatch):
    root, url = http_dir
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    (root / "tiny.zip").write_bytes(ZEROS)
    spec = DatasetSpec(name="tiny", files=TINY.files,
                       archive=Archive(url=f"{url}/tiny.zip", filename="tiny.zip", known_hash=None, size=1000))
    with pytest.raises(SizeLimitError, match=r"tiny\.zip from http://.*/tiny\.zip is larger than the 1,000 bytes") as err:
        fetch(spec, tmp_path / "out")
    assert _stopped_after(err) < len(ZEROS)
    assert _leftovers(tmp_path / "cache") == [] and _leftovers(tmp_path / "out") == []


def test_steam_url_download_past_the_raw_size_is_stopped(http_dir, tmp_path, monkeypatch):
    root, url = http_dir
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    (root / "x.data").write_bytes(ZEROS)
    spec = DatasetSpec(name="tiny", files=TINY.files, kaggle="someone/steam-video-games")
    with pytest.raises(SizeLimitError, match="larger than the 16 bytes"):
        fetch(spec, tmp_path / "out", steam_url=f"{url}/x.data")
    assert _leftovers(tmp_path / "cache") == [] and _leftovers(tmp_path / "out") == []


def test_kaggle_download_that_never_ends_is_killed_past_the_archive_limit(tmp_path, monkeypatch):
    """A `kaggle` that writes forever: stopped once its folder passes `archive_limit`."""
    monkeypatch.setenv("SPATTACK_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "kaggle"
    fake.write_text(f"#!{sys.executable}\n"
                    "import sys, time\n"
                    "folder = sys.argv[sys.argv.index('-p') + 1]\n"
                    "with open(folder + '/steam-video-games.zip', 'wb') as f:\n"
                    "    while True:\n"
                    "        f.write(bytes(1 << 18)); f.flush(); time.sleep(0.01)\n")
    fake.chmod(0o755)
    monkeypatch.setattr("spattack.data.download.shutil.which", lambda name: str(fake))
    spec = DatasetSpec(name="tiny", files=TINY.files, kaggle="someone/steam-video-games")
    limit = download.archive_limit(spec)
    assert limit == 2 * 16 + (1 << 20)
    with pytest.raises(SizeLimitError, match=f"larger than the {limit:,} bytes") as err:
        fetch(spec, tmp_path / "out")
    assert limit < _stopped_after(err) < 40 * limit
    assert _leftovers(tmp_path / "cache" / "kaggle") == [] and _leftovers(tmp_path / "out") == []


def test_canonical_archives_have_a_known_size():
    for spec in (ML_100K, ML_1M):
        assert download.archive_limit(spec) == spec.archive.size > 0


def test_a_dataset_without_a_download_source_says_where_its_file_goes(tmp_path):
    """A dataset added by an extension, with neither archive nor kaggle: the advice is the
    mirror and its DatasetSpec, not a download it does not have."""
    (tmp_path / "mirror" / "tiny").mkdir(parents=True)
    with pytest.raises(MissingRawFileError, match=r"x.data is not in the mirror folder .*Fix: put it at .*tiny/x.data "
                                                  r"\(tiny has no download source in its DatasetSpec\)"):
        fetch(TINY, tmp_path / "raw", mirror=tmp_path / "mirror")
    with pytest.raises(MissingRawFileError, match=r"tiny: its DatasetSpec has no download source .*`mirror`"):
        fetch(TINY, tmp_path / "raw")
    (tmp_path / "mirror" / "tiny" / "x.data").write_bytes(b"not the file")
    with pytest.raises(ChecksumError, match=r"the sha256 in its DatasetSpec must be that of your file"):
        fetch(TINY, tmp_path / "raw", mirror=tmp_path / "mirror")
