"""`ablations.files`: the one atomic writer and the one file hasher."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ablations.files import sha256_file, write_atomic, write_text_atomic


def test_atomic_text_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_text_atomic(path, "1")
    write_text_atomic(path, "2")
    assert path.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_text_is_utf8_with_newlines_as_given(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "t.csv", "a,β\r\n1,2\n")
    assert path.read_bytes() == b"a,\xce\xb2\r\n1,2\n"


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "p.bin"
    write_atomic(path, lambda fh: fh.write(b"old"))

    def half(fh) -> None:
        fh.write(b"ne")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomic(path, half)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["p.bin"]


def test_sha256_file_known_digests(tmp_path: Path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")
    (tmp_path / "empty").write_bytes(b"")
    # FIPS 180-2 test vector for "abc", and the digest of no bytes
    assert sha256_file(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    big = bytes(range(256)) * 5000  # > one 1 MiB block
    (tmp_path / "big").write_bytes(big)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(big).hexdigest()


def test_atomic_target_keeps_the_suffix_and_leaves_nothing_on_error(tmp_path):
    from ablations.files import atomic_target

    path = tmp_path / "video.gif"
    path.write_bytes(b"old")
    with atomic_target(path, suffix=".gif") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".gif" and tmp != path
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"
    try:
        with atomic_target(path, suffix=".gif") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    except RuntimeError:
        pass
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.gif"]
