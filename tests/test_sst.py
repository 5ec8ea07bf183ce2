"""SST-2 loading (harness/datasets/sst.py): the shipped files, the held-out split, and clear errors on bad input."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("line", ["1", "0 ", "1 \t "])
def test_a_label_with_no_sentence_is_refused_naming_file_and_line(tmp_path, line):
    path = tmp_path / "stsa.binary.dev"
    path.write_text(f"1 a fine film .\n0 a dull film .\n{line}\n")
    with pytest.raises(SSTFormatError, match=rf"stsa\.binary\.dev:3: expected 'LABEL SENTENCE' .*; got "
                                             + re.escape(repr(line)) + "$"):
        read_split(path, "dev")


def test_blank_lines_are_skipped_and_counted_in_the_data_file_table(tmp_path):
    from harness.datasets.data_files import DataFiles, data_file
    from harness.reporting.report import ReportBuilder
    from harness.reporting.rendering import render

    path = tmp_path / "stsa.binary.dev"
    path.write_text("\n1 a fine film .\n   \n0 a dull film .\n\n")
    split = read_split(path, "dev")
    assert split.sentences == ("a fine film .", "a dull film .")
    entry = data_file("--sst-path", "sst dev", path, split.labels)
    assert (entry.sentences, entry.positive, entry.blank_lines) == (2, 1, 3)
    assert all(data_file("shipped", name, split.path, split.labels).blank_lines == 0 for name, split in load_sst().items())
    report = ReportBuilder(model_name="m", settings={})
    render(DataFiles((entry,)), report)
    assert "| sst dev | --sst-path |" in report.sections["Data files (read at session start)"]
    assert report.data["data_files"][0]["blank_lines_skipped"] == 3


def test_the_session_start_hook_reads_the_files_and_refuses_a_bad_one_before_any_test(tmp_path):
    """``fixtures/sst.py``'s ``pytest_sessionstart``: the splits go to the stash; a bad file is a usage error
    (which pytest reports before collecting any test) naming the option, file and line."""
    from types import SimpleNamespace

    from fixtures.settings import settings_key
    from fixtures.sst import pytest_sessionstart, sst_key

    def session(path):
        stash = pytest.Stash()
        stash[settings_key] = SimpleNamespace(sst_path=path)
        return SimpleNamespace(config=SimpleNamespace(stash=stash))

    good = session(None)
    pytest_sessionstart(good)
    assert set(good.config.stash[sst_key]) == {"train", "dev"}
    (tmp_path / "stsa.binary.test").write_text("1 a fine film .\n0\n")
    with pytest.raises(pytest.UsageError, match=rf"^--sst-path: {tmp_path}/stsa\.binary\.test:2: expected 'LABEL "
                                                r"SENTENCE'.*got '0'$"):
        pytest_sessionstart(session(tmp_path))
    with pytest.raises(pytest.UsageError, match=rf"^--sst-path: SST directory {tmp_path / 'none'} does not exist"):
        pytest_sessionstart(session(tmp_path / "none"))
    (tmp_path / "stsa.binary.test").write_bytes(b"1 a fine film .\n0 caf\xe9 .\n")
    with pytest.raises(pytest.UsageError, match=rf"^--sst-path: a file under {tmp_path} is not UTF-8 text"):
        pytest_sessionstart(session(tmp_path))
