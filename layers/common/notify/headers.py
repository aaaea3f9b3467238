"""Text that becomes an email header: one line, with no control character, whatever a payload or a template held.

A CR or LF in a header value would end the header and start another (``Bcc: victim@example.com``). Templates
refuse them in a subject's source when saved (:func:`first_control`); what a payload brings in is replaced when a
subject is rendered and again when the email's headers are built (:func:`header_value`), so no path reaches SES
with one. Bodies are not headers and keep their lines.
"""

from __future__ import annotations

import re
from typing import Optional

# C0 controls (CR, LF, tab, NUL...), DEL, the C1 controls (NEL among them) and Unicode's line and paragraph
# separators: everything a mail or HTTP stack may read as the end of a line or pass through unprintable.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# RFC 5322's field name: printable ASCII but the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")


def header_value(text: str) -> str:
    """``text`` as one header line: each run of control characters becomes one space."""
    return _CONTROL.sub(" ", text)


def first_control(text: str) -> Optional[str]:
    """Where the first control character of ``text`` is, as ``U+000A (a line break) at column 4``; None if none.

    Every line break is a control character, so the first one is always on the text's first line.
    """
    found = _CONTROL.search(text)
    if found is None:
        return None
    char = found.group()[0]
    kind = "a line break" if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else "a control character"
    return f"U+{ord(char):04X} ({kind}) at column {found.start() + 1}"


def is_field_name(name: str) -> bool:
    """True for a valid header field name (RFC 5322: printable ASCII except the colon, at least one)."""
    return _FIELD_NAME.fullmatch(name) is not None
