"""`visible()`: control and format characters from Kafka are shown as escapes, never interpreted."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balance_tui.core.safe_text import json_visible, visible

#: Categories a terminal (or a Markdown viewer) may act on instead of showing.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;PWNED-TITLE\x07", "\\x1b]0;PWNED-TITLE\\x07"),  # sets the terminal's title
    ("\x1b[2J", "\\x1b[2J"),  # blanks the screen
    ("CUST\x00001", "CUST\\x00001"),
    ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
    ("\x7f", "\\x7f"),  # DEL
    ("\x9b31m", "\\x9b31m"),  # C1 CSI: an escape sequence in one byte on 8-bit terminals
    ("\x85", "\\x85"),  # NEL, a C1 line break
    ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override ("Trojan Source")
    ("\u2066x\u2069", "\\u2066x\\u2069"),  # bidi isolates
    ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),  # bidi marks
    ("CUST-\u200b1", "CUST-\\u200b1"),  # zero-width space: two ids that look the same
    ("\ufeffCUST", "\\ufeffCUST"),
    ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
    ("\ud800", "\\ud800"),  # a lone surrogate (valid in JSON) cannot even be encoded to UTF-8
    ("tag\U000e0041", "tag\\U000e0041"),  # a tag character alone hides ASCII text
    ("CUST-\u200d1", "CUST-\\u200d1"),  # a zero-width joiner next to ASCII only hides something
])
def test_controls_become_escapes(raw: str, shown: str) -> None:
    assert visible(raw) == shown


@pytest.mark.parametrize("text", [
    "CUST-001", "Dépôt initial", "Überweisung an Müller", "客户-七", "返金 ￥1,200", "Ελληνικά", "עברית ושלום",
    "مرحبا", "💰 paid 🎉", "👨‍👩‍👧 family", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 flag", "नमस्ते", "می‌خواهم", "e\u0301", "[bold red]x[/]",
    "back\\slash", "", " spaced  out ", "\u00a0nbsp", "\ue000 private use",
])
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert visible(text) == text


def test_every_character_a_terminal_may_interpret_is_escaped() -> None:
    hidden = [chr(cp) for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) in HIDDEN_CATEGORIES]
    assert len(hidden) > 2000  # the surrogates alone are 2048
    for char in hidden:
        shown = visible(char)
        assert shown.startswith("\\") and shown.isascii() and shown.isprintable(), repr(char)


def test_every_other_character_is_kept() -> None:
    others = "".join(chr(cp) for cp in range(sys.maxunicode + 1)
                     if unicodedata.category(chr(cp)) not in HIDDEN_CATEGORIES)
    assert visible(others) == others


@given(st.text())
def test_the_result_holds_nothing_a_terminal_interprets(text: str) -> None:
    shown = visible(text)
    assert not any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in shown
                   if char not in "\u200c\u200d" and not 0xE0020 <= ord(char) <= 0xE007F)
    assert visible(shown) == shown  # applying it twice (a widget and its helper) changes nothing


@given(st.text())
def test_json_visible_keeps_the_data_exactly(text: str) -> None:
    document = json.dumps({"customerId": text}, ensure_ascii=False)
    safe = json_visible(document)
    assert json.loads(safe) == {"customerId": text}
    assert safe.encode("utf-8")  # no lone surrogate left raw
    assert not any(unicodedata.category(char) in {"Cc", "Cs", "Zl", "Zp"} for char in safe)


def test_json_visible_escapes_what_ensure_ascii_false_leaves_raw() -> None:
    document = json.dumps(["\x9b\u202e\u2028\x7f\ud800\U000e0041"], ensure_ascii=False)
    assert json_visible(document) == '["\\u009b\\u202e\\u2028\\u007f\\ud800\\udb40\\udc41"]'
