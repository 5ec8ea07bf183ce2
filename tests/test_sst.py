"""SST-2 loading (harness/datasets/sst.py): the shipped files, the held-out split, and clear errors on bad input."""

from __future__ import annotations

import pytest

from harness.datasets.sst import SSTFormatError, held_out_split, load_sst, read_split


def test_shipped_splits_have_both_classes():
    splits = load_sst()
    assert set(splits) == {"train", "dev"}
    assert len(splits["train"]) == 6920 and len(splits["dev"]) == 872
    assert set(splits["dev"].labels) == {0, 1}
    assert splits["dev"].sentences[0] == "one long string of cliches ."


def test_other_directory_uses_whichever_files_exist(tmp_path):
    (tmp_path / "stsa.binary.test").write_text("1 a fine film .\n0 a dull film .\n")
    splits = load_sst(tmp_path)
    assert list(splits) == ["test"] and splits["test"].labels == (1, 0)


def test_held_out_split_prefers_test_then_dev(tmp_path):
    assert held_out_split(load_sst()).name == "dev"  # the shipped files have no test split
    for name in ("train", "dev", "test"):
        (tmp_path / f"stsa.binary.{name}").write_text("1 a fine film .\n0 a dull film .\n")
        assert held_out_split(load_sst(tmp_path)).name == name


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "stsa.binary.dev"
    path.write_text("1 a fine film .\npositive a dull film .\n")
    with pytest.raises(SSTFormatError, match=r"stsa\.binary\.dev:2: expected 'LABEL SENTENCE'"):
        read_split(path, "dev")


@pytest.mark.parametrize("text, message", [("", "no sentences"), ("1 good .\n1 fine .\n", "both classes")])
def test_empty_or_one_class_file_is_an_error(tmp_path, text, message):
    path = tmp_path / "stsa.binary.train"
    path.write_text(text)
    with pytest.raises(SSTFormatError, match=message):
        load_sst(tmp_path)


def test_directory_without_sst_files_is_an_error(tmp_path):
    with pytest.raises(SSTFormatError, match="holds none of"):
        load_sst(tmp_path)
    with pytest.raises(SSTFormatError, match="does not exist"):
        load_sst(tmp_path / "missing")
