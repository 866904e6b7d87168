"""Linking: the chunks of one sentence into (subject, predicate, object) triplets."""

from __future__ import annotations

from .chunk import Unit
from .triplet import Triplet


class TripletLinker:
    """Links the units of one sentence into triplets."""

    def __init__(self, units: list[Unit]):
        self.units = units
        self.triplets: list[Triplet] = []
        self._seen: set[Triplet] = set()

    def _kind(self, index: int) -> str:
        return self.units[index].kind if 0 <= index < len(self.units) else ""

    def link(self) -> list[Triplet]:
        for index, unit in enumerate(self.units):
            if unit.kind != "VG":
                continue
            if unit.voice == "copula" and self._kind(index - 1) == "EX":
                self._link_there_construction(index)
                continue
            unit.subjects = self._find_subjects(index)
            if not unit.subjects:
                continue
            for subject in unit.subjects:
                self.units[subject].role = "subject"
            predicate, objects = self._find_objects(index)
            if unit.voice == "copula" and objects == [""]:
                continue
            self._emit(unit.subjects, predicate, objects)
        return self.triplets

    def _emit(self, subjects: list[int], predicate: str, objects: list[str]) -> None:
        for subject in subjects:
            for obj in objects:
                triplet = Triplet(self.units[subject].text, predicate, obj)
                if triplet not in self._seen:
                    self._seen.add(triplet)
                    self.triplets.append(triplet)

    def _link_there_construction(self, index: int) -> None:
        if self._kind(index + 1) != "NP":
            return
        subjects = self._forward_group(index + 1)
        for subject in subjects:
            self.units[subject].role = "subject"
        after = subjects[-1] + 1
        if self._kind(after) in ("VG", "REL"):
            return  # "there is a man talking ...": the next verb group takes the noun phrase
        if self._kind(after) == "P" and self._kind(after + 1) == "NP":
            objects = self._forward_group(after + 1)
            self._take_objects(objects, index)
            self._emit(subjects, "be " + self.units[after].text, [self.units[o].text for o in objects])
        else:
            self._emit(subjects, "be", [""])

    def _backward_group(self, index: int) -> list[int]:
        """Free noun phrases coordinated before and including `index` ("a man and a woman")."""
        group = [index]
        while (
            self._kind(group[0] - 1) in ("CC", "BOUND")
            and self.units[group[0] - 1].text in (",", "and", "or", "&")
            and self._kind(group[0] - 2) == "NP"
            and self.units[group[0] - 2].role is None
            and self._kind(group[0] - 3) != "P"
        ):
            group.insert(0, group[0] - 2)
        return group

    def _forward_group(self, index: int) -> list[int]:
        """Noun phrases coordinated from `index` on, stopping before one that starts a new clause."""
        group = [index]
        while (
            self._kind(group[-1] + 1) in ("CC", "BOUND")
            and self.units[group[-1] + 1].text in (",", "and", "or", "&")
            and self._kind(group[-1] + 2) == "NP"
            and self._kind(group[-1] + 3) not in ("VG", "REL")
        ):
            group.append(group[-1] + 2)
        return group

    def _previous_verb_group(self, index: int) -> Unit | None:
        for position in range(index - 1, -1, -1):
            if self.units[position].kind == "VG" and self.units[position].subjects:
                return self.units[position]
        return None

    def _find_subjects(self, index: int) -> list[int]:
        unit = self.units[index]
        before = index - 1
        kind = self._kind(before)
        if kind == "REL" and self._kind(before - 1) == "NP":
            unit.in_relative = True
            return self._backward_group(before - 1)
        if kind == "CC" or (kind == "BOUND" and self.units[before].text == ","):
            previous = self._previous_verb_group(index)
            return list(previous.subjects) if previous else []
        if kind != "NP":
            return []
        candidate = self.units[before]
        if candidate.role == "object" and candidate.owner is not None:
            owner = self.units[candidate.owner]
            if unit.finite and (not owner.finite or owner.in_relative):
                return list(owner.subjects)
            return [before]
        # Skip prepositional phrases that modify the subject: "a man in a red shirt is singing".
        root = before
        while self._kind(root - 1) == "P" and self._kind(root - 2) == "NP":
            root -= 2
        if root != before and self.units[root].role is None:
            return self._backward_group(root)
        return self._backward_group(before)

    def _take_objects(self, objects: list[int], owner: int) -> None:
        for obj in objects:
            self.units[obj].role = "object"
            self.units[obj].owner = owner

    def _find_objects(self, index: int) -> tuple[str, list[str]]:
        unit = self.units[index]
        predicate = [unit.text]
        position = index + 1
        while self._kind(position) == "PRT":
            predicate.append(self.units[position].text)
            position += 1
        kind = self._kind(position)
        if kind == "NP":
            objects = self._forward_group(position)
        elif kind == "P" and self._kind(position + 1) == "NP":
            predicate.append(self.units[position].text)
            objects = self._forward_group(position + 1)
        elif kind == "ADJ":
            return " ".join(predicate), [self.units[position].text]
        else:
            return " ".join(predicate), [""]
        self._take_objects(objects, index)
        return " ".join(predicate), [self.units[obj].text for obj in objects]


