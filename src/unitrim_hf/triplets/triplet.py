"""The (subject, predicate, object) triplet type."""

from __future__ import annotations

from typing import NamedTuple


class Triplet(NamedTuple):
    """One (subject, predicate, object) triplet; `object` is `""` for an intransitive verb."""

    subject: str
    predicate: str
    object: str

    @property
    def phrase(self) -> str:
        """`"subject predicate object"` joined with single spaces, without a trailing space."""
        return " ".join(part for part in (self.subject, self.predicate, self.object) if part)


