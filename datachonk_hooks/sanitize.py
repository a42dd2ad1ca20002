"""One sanitizer for text from outside: dbt Cloud, commits and branches, the local API's callers.

Such text reaches terminals, logs (waiter.log, the logging module), the ledger's reason text
and the cause sent to dbt Cloud. A stranger controls it (a server message, a commit subject,
a branch name), so it must not be able to drive the terminal (clear the screen, set the
window title, ring the bell, forge a line with a carriage return), reorder what a reader sees
(bidi overrides), or hide text (zero-width characters). Every such path calls `sanitize`;
nothing else in the package decides what is safe to show.

What comes out:

* ESC sequences are removed whole: CSI (`ESC [ ... final`, also the 8-bit `0x9B` form),
  string sequences (OSC `ESC ] ... BEL/ST`, DCS, SOS, PM, APC and their 8-bit forms) and
  any other `ESC x` pair. They are formatting (dbt's coloured logs) or attacks; neither
  should be shown, and escaping them would bury a log in noise.
* Line breaks (`\\n`, `\\r`, `\\v`, `\\f`, NEL, U+2028, U+2029) and tabs become one space in a
  single line; with `multiline=True` (a failing step's log excerpt) they become `\\n`, and a
  tab still a space.
* Every other C0/C1 control and DEL, the bidi controls (U+061C, U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069), the zero-width and invisible characters (U+180E,
  U+200B-U+200D, U+2060-U+2064, U+FEFF, tag characters U+E0000-U+E007F) and lone surrogates
  (which would crash a UTF-8 write) are shown as an escape (`\\x07`, `\\u202e`) by default,
  so a reader of a terminal, a log or the ledger sees that something was there; with
  `visible=False` (the cause sent to dbt Cloud) they are removed.

Standard library only and cheap to import: the git hook imports it on every push.
"""

from __future__ import annotations

import re

# The patterns are compiled on first use (and then kept by `re`'s cache), not at import: most
# text is printable and never needs them, and the hook imports this module on every push.
#
# ESC sequences, longest forms first. String sequences end at BEL or ST (`ESC \` or 0x9C);
# an unterminated one is not matched here, so only its `ESC ]` pair goes (the generic rule).
_SEQUENCE = (
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, DCS...
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[ -/]*[0-~]"  # any other ESC x (nF, Fp, Fe, Fs)
)
# Line breaks as str.splitlines knows them (minus the separators 0x1C-0x1E, shown instead).
_BREAKS = "\n\r\x0b\x0c\x85\u2028\u2029"
_LINE_BREAKS = f"\r\n|[{_BREAKS}]"
_SINGLE_LINE_SPACE = f"[\t{_BREAKS}]+"
# Everything else that must not reach a reader as is.
_HIDDEN = (
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"  # C0 and C1 controls (breaks and tab aside), DEL
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u180e\u200b-\u200d\u2060-\u2064\ufeff"  # zero-width and invisible characters
    "\U000e0000-\U000e007f"  # tag characters (invisible text)
    "\ud800-\udfff"  # lone surrogates: not encodable, a write would fail
)
_HIDDEN_CHAR = f"[{_HIDDEN}]"
# What the local API refuses in a single-line field: every character `sanitize` would touch.
_REFUSED = f"[\t{_BREAKS}{_HIDDEN}]"
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def sanitize(text: str, *, multiline: bool = False, visible: bool = True) -> str:
    """`text` made safe for a terminal, a log, the ledger or a cause (see the module doc).

    `multiline` keeps line breaks as `\\n` (for a block meant to have several lines);
    `visible=False` removes hidden characters instead of showing them as escapes (for text
    sent on to dbt Cloud, where an escape would only be noise). Idempotent: sanitized text
    passes through unchanged.
    """
    if text.isprintable():  # every character changed below is a Cc, Cf, Cs, Zl or Zp one
        return text
    text = re.sub(_SEQUENCE, "", text)
    if multiline:
        text = re.sub(_LINE_BREAKS, "\n", text).replace("\t", " ")
    else:
        text = re.sub(_SINGLE_LINE_SPACE, " ", text)
    return re.sub(_HIDDEN_CHAR, _escape if visible else "", text)


def unsafe_characters(text: str, *, allow_whitespace: bool = False) -> list[str]:
    """The characters of `text` a single-line field must not hold, escaped and in order of
    first appearance (for a validation message that says which ones).

    `allow_whitespace` lets tabs and newlines (`\\t`, `\\n`, `\\r`) through, for text
    that is folded into one line anyway (a cause typed in an editor).
    """
    seen: dict[str, None] = {}
    for match in re.finditer(_REFUSED, text):
        if not (allow_whitespace and match.group() in _NAMED):
            seen.setdefault(_escape(match), None)
    return list(seen)


def _escape(match: re.Match[str]) -> str:
    """`\\n`, `\\x07`, `\\u202e` or `\\U000e0041`: how Python spells the character in a
    literal."""
    code = ord(match.group())
    if match.group() in _NAMED:
        return _NAMED[match.group()]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
