"""Names of staged files: each file of the working dir has one name, whoever gives it (``input_files``,
``project_files``, an array child's ``array_input_files``); a collision is refused naming both, never one
file silently dropped or replaced."""

from __future__ import annotations

import pytest

from airflow_batch_runner import array_spec
from airflow_batch_runner.layout import is_s3_uri
from airflow_batch_runner.validation import check_input_files, check_staged_names


def test_input_files_are_normalised_names_to_values():
    assert check_input_files({"./a.txt": "x", "b//c.txt": "s3://bucket/key"}) == {"a.txt": "x", "b/c.txt": "s3://bucket/key"}


@pytest.mark.parametrize(("first", "second"), [("a.txt", "./a.txt"), ("d/a.txt", "d//a.txt"), ("d", "d/")])
def test_two_names_of_one_input_file_are_refused_naming_both(first, second):
    with pytest.raises(ValueError) as excinfo:
        check_input_files({first: "one", second: "two"})
    message = str(excinfo.value)
    assert message.startswith("input_files: ")
    assert repr(first) in message and repr(second) in message and "same file" in message


def test_a_value_that_is_not_text_is_refused_naming_the_file():
    with pytest.raises(ValueError, match=r"^input_files\['a.txt'\] must be a string"):
        check_input_files({"a.txt": 3})


def test_distinct_files_and_folders_are_accepted():
    check_staged_names({"input_files": ["a.txt", "d/b.txt", "d/e/c.txt"], "project_files": ["d/e/f.txt", "g.sh"]},
                       [["h.txt", "d/i.txt"], ["h.txt"]])


def test_a_project_file_with_an_input_files_name_is_refused():
    with pytest.raises(ValueError) as excinfo:
        check_staged_names({"input_files": ["conf/a.yaml"], "project_files": ["conf/a.yaml"]})
    message = str(excinfo.value)
    assert message.startswith("project_files: 'conf/a.yaml' is also a file of input_files")
    assert "Rename one of them" in message


@pytest.mark.parametrize(("names", "bad"), [(["a", "a/b.txt"], "'a/b.txt' needs a folder 'a'"),
                                            (["a/b.txt", "a"], "'a' is a file where input_files puts a folder")])
def test_a_file_where_another_name_needs_a_folder_is_refused(names, bad):
    with pytest.raises(ValueError, match=f"^input_files: {bad}"):
        check_staged_names({"input_files": names})


def test_a_child_file_named_like_a_shared_input_is_refused_naming_the_child():
    with pytest.raises(ValueError) as excinfo:
        check_staged_names({"input_files": ["data.csv"], "project_files": []}, [["own.csv"], ["x.csv", "data.csv"]])
    assert str(excinfo.value).startswith("array_input_files[1]: 'data.csv' is also a file of input_files")


def test_children_may_use_the_same_names_as_each_other():
    check_staged_names({"input_files": ["shared/a.txt"]}, [["item.json", "shared/b.txt"]] * 3)


def test_a_child_folder_over_a_shared_file_is_refused():
    with pytest.raises(ValueError, match=r"^array_input_files\[0\]: 'shared/x' needs a folder 'shared'"):
        check_staged_names({"project_files": ["shared"]}, [["shared/x"]])


def test_array_input_files_refuse_two_names_of_one_file_in_a_child():
    with pytest.raises(ValueError, match=r"^array_input_files\[1\]: 'a.txt' and './a.txt' name the same file"):
        array_spec.resolve(None, [{"a.txt": "1"}, {"a.txt": "2", "./a.txt": "3"}], 0)


@pytest.mark.parametrize(("value", "uri"), [
    ("s3://bucket/key.csv", True),
    ("s3://bucket/a folder/key with spaces.csv", True),
    ("s3://bucket/key.csv\n", False),  # a file whose content happens to be a URI, with its newline
    ("s3://bucket/key.csv is where\nthe data lives", False),
    ("s3://bucket/key\r\n", False),
    ("see s3://bucket/key", False),
    ("", False),
])
def test_an_input_value_is_a_uri_only_on_one_line(value: str, uri: bool) -> None:
    assert is_s3_uri(value) is uri
