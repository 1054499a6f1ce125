"""Text from Kafka, made safe to show: control characters become visible escapes.

Anyone who can write to a topic chooses the customer ids, descriptions and heartbeats we
show, and a terminal acts on some characters instead of showing them (`ESC ] 0 ;` sets its
title, `ESC [ 2 J` clears it, U+202E reverses what follows). `visible` is applied where data
becomes text for a terminal or a Markdown file; the data itself (ledger, JSON exports,
session log) keeps every character exactly.
"""

from __future__ import annotations

import re
import unicodedata

#: C0/C1 controls and DEL (Cc), format characters such as the bidi overrides and zero-width
#: spaces (Cf), lone surrogates (Cs: they cannot even be encoded), line and paragraph separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Format characters that ordinary text needs are kept where they do that job: a zero-width
# (non-)joiner between two letters or symbols outside ASCII (emoji sequences, Indic and Persian
# words), and the tag characters of a subdivision flag (🏴 + tags + CANCEL TAG). Elsewhere they
# only hide something, so they are escaped like the rest.
_JOINERS = frozenset("\u200c\u200d")
_CANDIDATE = re.compile(r"(\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f)|[^\x20-\x7e]")


def _is_hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def _joins(text: str, at: int) -> bool:
    """True when the joiner at `at` sits between two shown non-ASCII characters."""
    neighbours = text[at - 1:at] if at else "", text[at + 1:at + 2]
    return all(char and not char.isascii() and not _is_hidden(char) for char in neighbours)


def _hides(match: re.Match[str]) -> bool:
    char = match.group()
    if match.group(1):
        return False
    if char in _JOINERS:
        return not _joins(match.string, match.start())
    return _is_hidden(char)


_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _visible_match(match: re.Match[str]) -> str:
    return _escape(match.group()) if _hides(match) else match.group()


def visible(text: str) -> str:
    """`text` with every control and format character written as an escape (`\\x1b`, `\\n`, `\\u202e`).

    Accents, CJK, emoji and the rest of ordinary Unicode are left as they are; a backslash is
    not doubled, so the result is for showing, not for parsing back. Idempotent.
    """
    if text.isprintable():  # nothing hidden (the common case), decided in C
        return text
    return _CANDIDATE.sub(_visible_match, text)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _json_match(match: re.Match[str]) -> str:
    # json.dumps escapes every C0 control inside strings: a raw one is its own indentation.
    char = match.group()
    return _json_escape(char) if char > "\x1f" and _hides(match) else char


def json_visible(document: str) -> str:
    """A JSON text from `json.dumps(..., ensure_ascii=False)` with the same escapes as JSON `\\uXXXX`.

    `json.dumps` escapes C0 controls but leaves DEL, C1, bidi controls, separators and lone
    surrogates raw; escaped, the document decodes to exactly the same strings.
    """
    if document.isprintable():
        return document
    return _CANDIDATE.sub(_json_match, document)
