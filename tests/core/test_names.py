"""The one check of user-given names (datasets, models, studies, aliases)."""

from __future__ import annotations

import pytest

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.names import MAX_NAME_LENGTH, check_name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("two\nlines", r"control character \(U\+000A\)"),
        ("carriage\rreturn", r"control character \(U\+000D\)"),
        ("tab\there", r"control character \(U\+0009\)"),
        ("\x1b[31mred", r"control character \(U\+001B\)"),
        ("abc\u202etxt.exe", r"invisible formatting character \(U\+202E\)"),
        ("zero\u200bwidth", r"invisible formatting character \(U\+200B\)"),
        ("line\u2028separator", r"line separator \(U\+2028\)"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (" padded", "starts or ends with a space"),
        ("x" * (MAX_NAME_LENGTH + 1), f"the limit is {MAX_NAME_LENGTH}"),
    ],
)
def test_garbling_names_are_refused_with_the_character_named(name: str, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message) as caught:
        check_name(name, "dataset name")
    # The message quotes the name escaped: printing it cannot garble a terminal.
    text = str(caught.value)
    assert text.startswith("dataset name") and text.isprintable()


def test_a_name_that_is_not_text_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="must be text, not int"):
        check_name(3, "alias")


@pytest.mark.parametrize("name", ["iris", "Iris data v2", "données-été", "データ", "a.b_c-1"])
def test_sound_names_pass_unchanged(name: str) -> None:
    assert check_name(name, "dataset name") is name
