"""Log signature matching: rules (from ``config/log_signatures.toml``) + log text -> findings.

Pure: the server stores an uploaded log, decodes it (``errors="replace"``), calls
:func:`match_log` and hands the findings to ``DiagnosticsEngine.log_analysed``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    """How bad a finding is. ``SAFETY`` stops remote resets and opens a P1 ticket."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    SAFETY = "safety"

    @property
    def rank(self) -> int:
        """0 (info) to 3 (safety), for ordering."""
        return _RANKS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.SAFETY: 3}


@dataclass(frozen=True, slots=True)
class SignatureRule:
    """One signature: a regular expression and what a match means.

    ``fault_class`` (optional) reclassifies the run's fault; ``escalate`` skips the remaining
    remote steps and opens a ticket.
    """

    id: str
    pattern: str
    finding: str
    severity: Severity = Severity.WARNING
    suggested_action: str | None = None
    fault_class: str | None = None
    parts: tuple[str, ...] = ()
    escalate: bool = False
    ignore_case: bool = True
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flags = re.MULTILINE | (re.IGNORECASE if self.ignore_case else 0)
        object.__setattr__(self, "regex", re.compile(self.pattern, flags))


@dataclass(frozen=True, slots=True)
class LogFinding:
    """What a rule found in a log: the first matching line, its number and the match count."""

    rule_id: str
    finding: str
    severity: Severity
    suggested_action: str | None = None
    fault_class: str | None = None
    parts: tuple[str, ...] = ()
    escalate: bool = False
    line: int | None = None
    excerpt: str | None = None
    count: int = 1


def match_log(
    rules: Iterable[SignatureRule], text: str, *, excerpt_chars: int = 200
) -> list[LogFinding]:
    """Every rule that matches ``text``, most severe first (then in rule order).

    One finding per rule: the first match gives the line number and excerpt (that line,
    trimmed to ``excerpt_chars``), ``count`` says how many times the rule matched.
    """
    found: list[tuple[int, int, LogFinding]] = []
    for order, rule in enumerate(rules):
        first = None
        count = 0
        for match in rule.regex.finditer(text):
            if first is None:
                first = match
            count += 1
        if first is None:
            continue
        start = text.rfind("\n", 0, first.start()) + 1
        end = text.find("\n", first.start())
        line_text = text[start : end if end >= 0 else len(text)].strip()
        found.append(
            (
                -rule.severity.rank,
                order,
                LogFinding(
                    rule_id=rule.id,
                    finding=rule.finding,
                    severity=rule.severity,
                    suggested_action=rule.suggested_action,
                    fault_class=rule.fault_class,
                    parts=rule.parts,
                    escalate=rule.escalate,
                    line=text.count("\n", 0, first.start()) + 1,
                    excerpt=line_text[:excerpt_chars],
                    count=count,
                ),
            )
        )
    found.sort(key=lambda item: (item[0], item[1]))
    return [finding for _, _, finding in found]


@dataclass(frozen=True, slots=True)
class SignatureSet:
    """The loaded rules; ``match(text)`` is :func:`match_log` over them."""

    rules: tuple[SignatureRule, ...] = ()

    def match(self, text: str) -> list[LogFinding]:
        """Findings for one log text."""
        return match_log(self.rules, text)
