"""Refuse regular expressions that can take exponential (or high polynomial) time.

`detect.marker` comes from a committed datachonk.yaml, so anyone who can push decides which
pattern the hook runs on every push. Python's `re` backtracks: `(a+)+$` on 34 `a`s and a `!`
runs for minutes, and the hook must never hold a push up. The hook also bounds the text a
marker is searched in (`detect.MARKER_LINE_CHARS`), which makes every linear or quadratic
pattern cheap; this check refuses, when the file is read, the shapes whose cost grows faster
than that bound can absorb:

- backreferences (`\\1`, `(?P=name)`, `(?(1)...)`): matching them is NP-hard in general;
- a repetition inside a repetition (`(a+)+`, `(a*)*`, `(?:x?y){2,}`): the classic
  exponential blow-up. Conservative: `(?:ab+)+` is refused too, though it is harmless;
- alternatives that can match the same text inside a repetition (`(a|a)*`, `(.|\\s)*`,
  `(a|a.)+`, `(a|ab)+`: an alternative that matches nothing overlaps with the next
  round): exponential as well (`re` itself merges `(\\w|\\d)` into one class first);
- three or more unbounded repetitions in a row that can match the same characters
  (`a*a*a*b`, `\\s*.*\\s*`): polynomial of degree 4 and up with `search`; two are allowed
  (`.*\\s+datachonk` is a natural marker and costs little on a bounded line).

It reads the parse tree of the standard library's own parser (`re._parser`), so it sees the
pattern exactly as `re` will run it, and costs microseconds: nothing is imported beyond `re`.
Character sets are compared approximately, always erring towards "they overlap".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from re import _constants as sre  # type: ignore[attr-defined,unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
from typing import Any

#: longer markers are refused: a marker names a tool, it is not a program
MAX_PATTERN_CHARS = 500
#: unbounded repetitions in a row over the same characters that are still allowed
MAX_ADJACENT = 2

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_UNBOUNDED = sre.MAXREPEAT
_SAMPLE = 256  # characters of a range tried against a category


class UnsafePatternError(ValueError):
    """The pattern may take exponential time; the message says which part and why."""


@dataclass
class _Chars:
    """An over-approximation of the characters a piece of a pattern can consume."""

    anything: bool = False
    ranges: list[tuple[int, int]] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)

    def add(self, other: _Chars) -> None:
        self.anything = self.anything or other.anything
        self.ranges.extend(other.ranges)
        self.categories |= other.categories

    def overlaps(self, other: _Chars) -> bool:
        if self.anything or other.anything:
            return bool(self.ranges or self.categories or self.anything) and bool(
                other.ranges or other.categories or other.anything
            )
        for lo, hi in self.ranges:
            for lo2, hi2 in other.ranges:
                if lo <= hi2 and lo2 <= hi:
                    return True
        for first, second in ((self, other), (other, self)):
            for category in first.categories:
                if (
                    category in second.categories
                    or _CATEGORY_OVERLAP.get(category, frozenset()) & second.categories
                ):
                    return True
                test = re.compile(_CATEGORY_REGEX[category])
                for lo, hi in second.ranges:
                    step = max(1, (hi - lo) // _SAMPLE)
                    if any(test.match(chr(c)) for c in range(lo, hi + 1, step)):
                        return True
        return False


_CATEGORY_REGEX = {
    "digit": r"\d",
    "word": r"\w",
    "space": r"\s",
}
_CATEGORY_OVERLAP = {"digit": frozenset({"word"}), "word": frozenset({"digit"})}
_CATEGORIES = {
    sre.CATEGORY_DIGIT: "digit",
    sre.CATEGORY_WORD: "word",
    sre.CATEGORY_SPACE: "space",
    sre.CATEGORY_UNI_DIGIT: "digit",
    sre.CATEGORY_UNI_WORD: "word",
    sre.CATEGORY_UNI_SPACE: "space",
}


def check_pattern(pattern: str) -> None:
    """Raise UnsafePatternError (or re.error) when `pattern` is invalid or may blow up."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafePatternError(f"longer than {MAX_PATTERN_CHARS} characters")
    parsed = sre_parse.parse(pattern)
    ignore_case = bool(parsed.state.flags & sre.SRE_FLAG_IGNORECASE)
    _Checker(ignore_case).sequence(list(parsed), inside_repeat=False)


class _Checker:
    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case

    def sequence(self, items: list[tuple[Any, Any]], *, inside_repeat: bool) -> None:
        """Check a sequence: each item, and the runs of overlapping unbounded repeats."""
        # (characters, run length) of the unbounded repeats still "open": only nullable
        # items, or items they could match themselves, stand between them and here.
        open_runs: list[tuple[_Chars, int]] = []
        for op, av in items:
            self.item(op, av, inside_repeat=inside_repeat)
            chars = self.chars([(op, av)])
            if op in _REPEATS and av[1] == _UNBOUNDED:
                run = 1 + max((n for c, n in open_runs if c.overlaps(chars)), default=0)
                if run > MAX_ADJACENT:
                    raise UnsafePatternError(
                        f"{run} repetitions in a row can match the same text (like a*a*a*);"
                        " join them into one"
                    )
                open_runs = [(c, n) for c, n in open_runs if c.overlaps(chars)]
                open_runs.append((chars, run))
            elif not self.nullable([(op, av)]):
                open_runs = [(c, n) for c, n in open_runs if c.overlaps(chars)]

    def item(self, op: Any, av: Any, *, inside_repeat: bool) -> None:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS, getattr(sre, "GROUPREF_IGNORE", None)):
            raise UnsafePatternError("backreferences (\\1, (?P=name), (?(1)...)) are not allowed")
        if op in _REPEATS:
            _low, high, body = av
            body = list(body)
            repeats = high == _UNBOUNDED or high > 1
            if repeats and self.has_variable_repeat(body):
                raise UnsafePatternError(
                    "a repetition inside a repetition (like (a+)+ or (a*)*) can take"
                    " exponential time; use a single repetition"
                )
            self.sequence(body, inside_repeat=inside_repeat or repeats)
        elif op is sre.BRANCH:
            alternatives = [list(alt) for alt in av[1]]
            if inside_repeat:
                self.refuse_overlap(alternatives)
            for alt in alternatives:
                self.sequence(alt, inside_repeat=inside_repeat)
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            saved = self.ignore_case
            if add_flags & sre.SRE_FLAG_IGNORECASE:
                self.ignore_case = True
            if del_flags & sre.SRE_FLAG_IGNORECASE:
                self.ignore_case = False
            try:
                self.sequence(list(body), inside_repeat=inside_repeat)
            finally:
                self.ignore_case = saved
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            self.sequence(list(av[1]), inside_repeat=inside_repeat)
        elif op is sre.ATOMIC_GROUP:
            self.sequence(list(av), inside_repeat=inside_repeat)

    def refuse_overlap(self, alternatives: list[list[tuple[Any, Any]]]) -> None:
        firsts = [(self.first(alt), self.nullable(alt)) for alt in alternatives]
        for i, (chars, empty) in enumerate(firsts):
            for other, other_empty in firsts[i + 1 :]:
                if empty or other_empty or chars.overlaps(other):
                    raise UnsafePatternError(
                        "alternatives that can match the same text inside a repetition"
                        " (like (a|a)* or (.|\\s)*) can take exponential time"
                    )

    def has_variable_repeat(self, items: list[tuple[Any, Any]]) -> bool:
        """Whether a repetition with a variable count is anywhere inside these items."""
        for op, av in items:
            if op in _REPEATS and (av[0] != av[1] or self.has_variable_repeat(list(av[2]))):
                return True
            if any(self.has_variable_repeat(list(sub)) for sub in _children(op, av)):
                return True
        return False

    def nullable(self, items: list[tuple[Any, Any]]) -> bool:
        """Whether these items can match the empty string (over-approximated)."""
        for op, av in items:
            if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
                continue
            if op in _REPEATS:
                if av[0] == 0 or self.nullable(list(av[2])):
                    continue
                return False
            if op is sre.BRANCH:
                if any(self.nullable(list(alt)) for alt in av[1]):
                    continue
                return False
            if op is sre.SUBPATTERN:
                if self.nullable(list(av[3])):
                    continue
                return False
            if op is sre.ATOMIC_GROUP:
                if self.nullable(list(av)):
                    continue
                return False
            if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                continue
            return False
        return True

    def first(self, items: list[tuple[Any, Any]]) -> _Chars:
        """The characters the items can start with (over-approximated)."""
        found = _Chars()
        for op, av in items:
            found.add(self.chars([(op, av)], first_only=True))
            if not self.nullable([(op, av)]):
                break
        return found

    def chars(self, items: list[tuple[Any, Any]], *, first_only: bool = False) -> _Chars:
        """The characters the items can consume (over-approximated)."""
        found = _Chars()
        for op, av in items:
            if op is sre.LITERAL:
                found.ranges.extend(self.cased(av, av))
            elif op in (sre.NOT_LITERAL, sre.ANY):
                found.anything = True
            elif op is sre.IN:
                found.add(self.charset(av))
            elif op in _REPEATS:
                body = list(av[2])
                found.add(self.first(body) if first_only else self.chars(body))
            elif op is sre.BRANCH:
                for branch in av[1]:
                    alt = list(branch)
                    found.add(self.first(alt) if first_only else self.chars(alt))
            elif op is sre.SUBPATTERN:
                body = list(av[3])
                found.add(self.first(body) if first_only else self.chars(body))
            elif op is sre.ATOMIC_GROUP:
                body = list(av)
                found.add(self.first(body) if first_only else self.chars(body))
            elif op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
                continue
            else:  # anything unknown: assume the worst
                found.anything = True
            if first_only and not self.nullable([(op, av)]):
                break
        return found

    def charset(self, members: list[tuple[Any, Any]]) -> _Chars:
        found = _Chars()
        for op, av in members:
            if op is sre.NEGATE:
                return _Chars(anything=True)
            if op is sre.LITERAL:
                found.ranges.extend(self.cased(av, av))
            elif op is sre.RANGE:
                found.ranges.extend(self.cased(av[0], av[1]))
            elif op is sre.CATEGORY and av in _CATEGORIES:
                found.categories.add(_CATEGORIES[av])
            else:  # \D, \W, \S and friends: nearly everything
                return _Chars(anything=True)
        return found

    def cased(self, low: int, high: int) -> list[tuple[int, int]]:
        """The range, plus its other-case ASCII letters when case is ignored."""
        ranges = [(low, high)]
        if self.ignore_case:
            for start, end, shift in ((0x41, 0x5A, 0x20), (0x61, 0x7A, -0x20)):
                lo, hi = max(low, start), min(high, end)
                if lo <= hi:
                    ranges.append((lo + shift, hi + shift))
            if high > 0x7F:  # other scripts fold too: assume any letter
                ranges.append((0x80, 0x10FFFF))
        return ranges


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-sequences of a node other than a repeat's body."""
    if op is sre.BRANCH:
        return list(av[1])
    if op is sre.SUBPATTERN:
        return [av[3]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [av[1]]
    if op is sre.ATOMIC_GROUP:
        return [av]
    if op is sre.GROUPREF_EXISTS:
        return [sub for sub in av[1:] if sub is not None]
    return []
