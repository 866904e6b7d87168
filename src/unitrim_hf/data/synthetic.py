"""SyntheticTriM: procedurally generated clips of coloured shapes with spatial and temporal captions.

Each clip shows one or two objects (colour x shape x size) that each do one thing: move
left/right/up/down, grow, shrink, appear, disappear, or stay in place. Captions come from templates:

- *spatial* facts hold in a single frame: `"a large red circle above a small blue square"`;
- *temporal* facts need several frames: `"a small blue square appears after a green triangle"`,
  `"a red circle moves to the left"`;
- one *combined* caption says everything and is unique in the benchmark (it is the test caption).

Playing a clip backwards is exactly the clip of the reversed scene (`ClipSpec.reversed`), whose
frames are the same set but whose temporal captions differ: temporal facts cannot be read off any
single frame. Everything is a pure function of `(seed, split, clip index)`.

Two scene sets (`SCENE_SETS`):

- `"mixed"` (the default, the main job's): one or two objects, any event, "stays" included;
- `"temporal_order"`: where the order of frames decides. Every clip has two objects that both change
  (move, grow, shrink, appear or disappear), and clips come in pairs: a scene and the same scene played
  backwards, whose frames are the same set, whose spatial caption is the same, and whose combined caption
  differs only in directions, in grow/shrink, appear/disappear, or in which of two events comes first
  ("a red circle appears after a blue square"). A model blind to frame order cannot tell the two apart.

Training and test scenes never coincide, whatever the sizes and seeds of the benchmarks compared: the scene space
is split once and for all by a hash of the combined caption (`scene_split`), and each split draws only its
own scenes, from its own random stream. A model trained on one SyntheticTriM benchmark has therefore never seen
the test videos of any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 235),
    "yellow": (240, 220, 40),
    "white": (240, 240, 240),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = (24, 24, 24)
# Radii as fractions of the frame side.
SIZE_RADIUS = {"small": 0.085, "large": 0.15}
EVENTS = ("moves", "grows", "shrinks", "appears", "disappears", "stays")
DIRECTIONS = ("left", "right", "up", "down")
CaptionKind = Literal["spatial", "temporal", "combined"]
SceneSet = Literal["mixed", "temporal_order"]
SCENE_SETS: tuple[str, ...] = ("mixed", "temporal_order")
# The events of the temporal-order scenes: each one reads differently backwards ("stays" does not).
ORDER_EVENTS = ("moves", "grows", "shrinks", "appears", "disappears")
Split = Literal["train", "test"]
# One scene in TEST_SCENE_BUCKETS is a test scene (by the hash of its combined caption); the others are training scenes.
TEST_SCENE_BUCKETS = 4
# Each split draws from its own random stream: rng([seed, stream, clip index, attempt]).
SPLIT_STREAMS: dict[str, int] = {"train": 0, "test": 1}


@dataclass(frozen=True)
class ObjectSpec:
    """One object's appearance and trajectory; coordinates are fractions of the frame (x right, y down).

    The object is drawn on frames `visible_from..visible_until` (inclusive); its centre and radius
    are linear in time from `start_*` (frame 0) to `end_*` (last frame).
    """

    colour: str
    shape: str
    start_center: tuple[float, float]
    end_center: tuple[float, float]
    start_radius: float
    end_radius: float
    visible_from: int
    visible_until: int

    def reversed(self, num_frames: int) -> "ObjectSpec":
        return replace(
            self,
            start_center=self.end_center,
            end_center=self.start_center,
            start_radius=self.end_radius,
            end_radius=self.start_radius,
            visible_from=num_frames - 1 - self.visible_until,
            visible_until=num_frames - 1 - self.visible_from,
        )

    def event(self, num_frames: int) -> str:
        """One of `EVENTS`."""
        if self.start_center != self.end_center:
            return "moves"
        if self.end_radius > self.start_radius:
            return "grows"
        if self.end_radius < self.start_radius:
            return "shrinks"
        if self.visible_from > 0:
            return "appears"
        if self.visible_until < num_frames - 1:
            return "disappears"
        return "stays"

    def direction(self) -> str:
        delta_x = self.end_center[0] - self.start_center[0]
        delta_y = self.end_center[1] - self.start_center[1]
        if abs(delta_x) >= abs(delta_y):
            return "right" if delta_x > 0 else "left"
        return "down" if delta_y > 0 else "up"

    def size_word(self) -> str:
        return "small" if self.start_radius <= SIZE_RADIUS["small"] else "large"

    def name(self, num_frames: int) -> str:
        """`"small red circle"`; no size word for an object whose size changes."""
        if self.event(num_frames) in ("grows", "shrinks"):
            return f"{self.colour} {self.shape}"
        return f"{self.size_word()} {self.colour} {self.shape}"

    def position_phrase(self, num_frames: int) -> str:
        """Where the object is on every frame showing it: `"in the top left"`, `"at the top"`... or `""`.

        A component (vertical / horizontal) is kept only if it is the same on all visible frames,
        so a spatial caption is true of any single frame in which the object appears.
        """
        vertical_words, horizontal_words = set(), set()
        for frame_index in range(self.visible_from, self.visible_until + 1):
            x, y = self.center_at(frame_index, num_frames)
            horizontal_words.add("left" if x < 0.4 else "right" if x > 0.6 else "")
            vertical_words.add("top" if y < 0.4 else "bottom" if y > 0.6 else "")
        vertical = vertical_words.pop() if len(vertical_words) == 1 else None
        horizontal = horizontal_words.pop() if len(horizontal_words) == 1 else None
        if vertical is None and horizontal is None:
            return ""
        if vertical and horizontal:
            return f"in the {vertical} {horizontal}"
        if vertical == "" and horizontal == "":
            return "in the center"
        if vertical:
            return f"at the {vertical}"
        if horizontal:
            return f"on the {horizontal}"
        return ""

    def center_at(self, frame_index: int, num_frames: int) -> tuple[float, float]:
        # Symmetric in (start, t) <-> (end, T-1-t), so a reversed spec renders the reversed frames bit for bit.
        last = num_frames - 1
        return tuple(
            (start * (last - frame_index) + end * frame_index) / last
            for start, end in zip(self.start_center, self.end_center)
        )

    def radius_at(self, frame_index: int, num_frames: int) -> float:
        last = num_frames - 1
        return (self.start_radius * (last - frame_index) + self.end_radius * frame_index) / last


@dataclass(frozen=True)
class Caption:
    text: str
    kind: CaptionKind


@dataclass(frozen=True)
class ClipSpec:
    """A whole clip: its objects (drawn in order), its length, and the scene set whose captions it gets (a
    `"temporal_order"` clip's combined caption says which of two appearances or disappearances comes first)."""

    objects: tuple[ObjectSpec, ...]
    num_frames: int
    scene_set: SceneSet = "mixed"

    def reversed(self) -> "ClipSpec":
        """The scene played backwards: renders to `render_clip(self)[::-1]`."""
        return ClipSpec(tuple(obj.reversed(self.num_frames) for obj in self.objects), self.num_frames, self.scene_set)

    def captions(self) -> list[Caption]:
        """2-5 captions; the last one is the combined caption."""
        return describe_clip(self)


# ---------------------------------------------------------------- captions
def _article(name: str) -> str:
    return f"a {name}"


def _event_phrase(obj: ObjectSpec, num_frames: int) -> str:
    event = obj.event(num_frames)
    if event == "moves":
        direction = obj.direction()
        return f"moves to the {direction}" if direction in ("left", "right") else f"moves {direction}"
    if event == "stays":
        return f"stays {obj.position_phrase(num_frames) or 'still'}"
    return event


def _constant_relation(first: ObjectSpec, second: ObjectSpec, num_frames: int) -> str | None:
    """`"above"`, `"below"`, `"to the left of"`... when it holds on every frame showing both."""
    relations = set()
    for frame_index in range(num_frames):
        if not (first.visible_from <= frame_index <= first.visible_until and second.visible_from <= frame_index <= second.visible_until):
            continue
        (x1, y1), (x2, y2) = first.center_at(frame_index, num_frames), second.center_at(frame_index, num_frames)
        if abs(y1 - y2) >= abs(x1 - x2):
            relations.add("above" if y1 < y2 else "below")
        else:
            relations.add("to the left of" if x1 < x2 else "to the right of")
    return relations.pop() if len(relations) == 1 else None


def describe_clip(clip: ClipSpec) -> list[Caption]:
    """Template captions of a clip (spatial, temporal, combined), in that order."""
    frames = clip.num_frames
    objects = clip.objects
    names = [obj.name(frames) for obj in objects]
    captions: list[Caption] = []

    # Spatial: appearance, plus position (static object) or a relation true on every shared frame.
    if len(objects) == 1:
        obj = objects[0]
        where = obj.position_phrase(frames)
        captions.append(Caption(f"{_article(names[0])} {where}".strip(), "spatial"))
    else:
        relation = _constant_relation(objects[0], objects[1], frames)
        joiner = f" {relation} " if relation else " and "
        captions.append(Caption(f"{_article(names[0])}{joiner}{_article(names[1])}", "spatial"))

    # Temporal: one per object that does something, plus the order of two events.
    # (with the position where it is constant, which makes these captions far less repetitive).
    for obj, name in zip(objects, names):
        if obj.event(frames) != "stays":
            where = obj.position_phrase(frames)
            subject = f"{_article(name)} {where}".strip()
            captions.append(Caption(f"{subject} {_event_phrase(obj, frames)}", "temporal"))
    order_caption = None
    if len(objects) == 2:
        first, second = objects
        events = (first.event(frames), second.event(frames))
        if events == ("appears", "appears"):
            later, earlier = (0, 1) if first.visible_from > second.visible_from else (1, 0)
            order_caption = f"{_article(names[later])} appears after {_article(names[earlier])}"
        elif events == ("disappears", "disappears"):
            earlier, later = (0, 1) if first.visible_until < second.visible_until else (1, 0)
            order_caption = f"{_article(names[earlier])} disappears before {_article(names[later])}"
        if order_caption:
            captions.append(Caption(order_caption, "temporal"))

    combined = " while ".join(f"{_article(name)} {_event_phrase(obj, frames)}" for obj, name in zip(objects, names))
    if clip.scene_set == "temporal_order" and order_caption:
        combined = order_caption  # which of the two comes first is the point of these scenes
    captions.append(Caption(combined, "combined"))
    return captions


# ---------------------------------------------------------------- sampling
def _sample_object(
    rng: np.random.Generator,
    event: str,
    colour: str,
    shape: str,
    cell: tuple[float, float, float, float],
    num_frames: int,
    other_visibility: tuple[int, int] | None,
) -> ObjectSpec:
    """An object doing `event` inside `cell = (x0, y0, x1, y1)` (fractions of the frame)."""
    x0, y0, x1, y1 = cell
    width, height = x1 - x0, y1 - y0
    size = str(rng.choice(list(SIZE_RADIUS)))
    radius = SIZE_RADIUS[size]
    center_x = x0 + width * float(rng.choice([0.25, 0.5, 0.75]))
    center_y = y0 + height * float(rng.choice([0.25, 0.5, 0.75]))
    if width < 0.9:  # half-frame column: keep the object horizontally centred in it
        center_x = x0 + width / 2
    if height < 0.9:
        center_y = y0 + height / 2
    start = end = (center_x, center_y)
    start_radius = end_radius = radius
    visible_from, visible_until = 0, num_frames - 1
    if event == "moves":
        direction = str(rng.choice([d for d in DIRECTIONS if (d in ("left", "right")) == (width > 0.9)]))
        low_x, high_x = x0 + 0.22 * width, x0 + 0.78 * width
        low_y, high_y = y0 + 0.22 * height, y0 + 0.78 * height
        start, end = {
            "left": ((high_x, center_y), (low_x, center_y)),
            "right": ((low_x, center_y), (high_x, center_y)),
            "up": ((center_x, high_y), (center_x, low_y)),
            "down": ((center_x, low_y), (center_x, high_y)),
        }[direction]
    elif event in ("grows", "shrinks"):
        small, large = SIZE_RADIUS["small"], SIZE_RADIUS["large"]
        start_radius, end_radius = (small, large) if event == "grows" else (large, small)
    elif event in ("appears", "disappears"):
        # Event frames between a quarter and three quarters of the clip, >= 3 frames from the other object's.
        candidates = list(range(num_frames // 4, 3 * num_frames // 4 + 1))
        if other_visibility is not None:
            other = other_visibility[0] if event == "appears" else other_visibility[1]
            candidates = [frame for frame in candidates if abs(frame - other) >= 3] or candidates
        moment = int(rng.choice(candidates))
        if event == "appears":
            visible_from = moment
        else:
            visible_until = moment
    return ObjectSpec(colour, shape, start, end, start_radius, end_radius, visible_from, visible_until)


def sample_clip(rng: np.random.Generator, num_frames: int = 16, scene_set: SceneSet = "mixed") -> ClipSpec:
    """A random scene: of one or two objects (two with probability 0.7) doing any of `EVENTS` (`"mixed"`), or of two
    objects doing one of `ORDER_EVENTS` each (`"temporal_order"`)."""
    if scene_set not in SCENE_SETS:
        raise ValueError(f"scene_set must be one of {SCENE_SETS}, got {scene_set!r}")
    if scene_set == "temporal_order":
        num_objects, event_choices = 2, ORDER_EVENTS
    else:
        num_objects, event_choices = (2 if rng.random() < 0.7 else 1), EVENTS
    looks = rng.permutation([(colour, shape) for colour in COLOURS for shape in SHAPES])[:num_objects]
    events = [str(rng.choice(event_choices)) for _ in range(num_objects)]
    if num_objects == 1:
        cells = [(0.0, 0.0, 1.0, 1.0)]
    else:
        # Rows (top/bottom) leave room for horizontal moves, columns for vertical ones.
        vertical_move = rng.random() < 0.5
        cells = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)] if vertical_move else [(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0)]
    objects: list[ObjectSpec] = []
    for (colour, shape), event, cell in zip(looks, events, cells):
        other = (objects[0].visible_from, objects[0].visible_until) if objects else None
        objects.append(_sample_object(rng, event, str(colour), str(shape), cell, num_frames, other))
    return ClipSpec(tuple(objects), num_frames, scene_set)


def scene_split(spec: ClipSpec) -> Split:
    """`"test"` or `"train"`: the split a scene belongs to in every benchmark of either scene set (a hash of its
    `"mixed"` combined caption, which determines the scene up to positions; equal scenes have equal captions)."""
    return combined_caption_split(describe_clip(replace(spec, scene_set="mixed"))[-1].text)


def combined_caption_split(combined: str) -> Split:
    """`scene_split` of the scene whose combined caption is `combined`."""
    bucket = int.from_bytes(hashlib.sha256(combined.encode()).digest()[:4], "little") % TEST_SCENE_BUCKETS
    return "test" if bucket == 0 else "train"


def generate_clip_specs(
    num_videos: int,
    seed: int,
    num_frames: int = 16,
    max_attempts: int = 200,
    split: Split = "train",
    scene_set: SceneSet = "mixed",
) -> list[ClipSpec]:
    """`num_videos` scenes of `split` whose combined captions are all different.

    Clip i depends only on (seed, split, i, earlier clips), so a smaller benchmark's clips are the first ones of
    a larger one with the same seed; scenes of the other split are never drawn (`scene_split`). A
    `"temporal_order"` benchmark draws a scene for every other clip and follows it with the scene played backwards
    (both of `split`; with an odd `num_videos` the last scene comes without its reversal).
    """
    if split not in SPLIT_STREAMS:
        raise ValueError(f"split must be one of {sorted(SPLIT_STREAMS)}, got {split!r}")
    group_size = 2 if scene_set == "temporal_order" else 1
    specs: list[ClipSpec] = []
    used: set[str] = set()
    # Three of four scenes are training scenes (and a reversed pair must fall in one split): allow for the draws the
    # other split takes.
    attempts = max_attempts * TEST_SCENE_BUCKETS * group_size
    for draw_index in range(-(-num_videos // group_size)):
        for attempt in range(attempts):
            rng = np.random.default_rng([seed, SPLIT_STREAMS[split], draw_index, attempt])
            spec = sample_clip(rng, num_frames, scene_set)
            group = [spec, spec.reversed()][:group_size]
            combined = [member.captions()[-1].text for member in group]
            # A mixed scene's combined caption is the one its split is hashed from: no second description.
            splits = map(combined_caption_split, combined) if scene_set == "mixed" else map(scene_split, group)
            if len(set(combined)) == group_size and not used.intersection(combined) and all(
                member_split == split for member_split in splits
            ):
                used.update(combined)
                specs.extend(group)
                break
        else:
            raise ValueError(
                f"could not find {num_videos} {split} clips with distinct captions (stopped at clip "
                f"{len(specs)}); ask for fewer videos"
            )
    return specs[:num_videos]


# ---------------------------------------------------------------- rendering
def _shape_mask(shape: str, grid_x: np.ndarray, grid_y: np.ndarray, center: tuple[float, float], radius: float) -> np.ndarray:
    offset_x, offset_y = grid_x - center[0], grid_y - center[1]
    if shape == "circle":
        return offset_x**2 + offset_y**2 <= radius**2
    if shape == "square":
        return np.maximum(np.abs(offset_x), np.abs(offset_y)) <= 0.85 * radius
    # Upward triangle: apex at centre - radius, base at centre + 0.8 radius, half-width radius at the base.
    depth = offset_y + radius
    return (offset_y <= 0.8 * radius) & (depth >= 0) & (np.abs(offset_x) <= depth / 1.8)


def render_clip(clip: ClipSpec, frame_size: int = 64) -> np.ndarray:
    """Frames of a clip: uint8 (num_frames, frame_size, frame_size, 3) RGB."""
    coordinates = (np.arange(frame_size, dtype=np.float64) + 0.5) / frame_size
    grid_x, grid_y = np.meshgrid(coordinates, coordinates)
    frames = np.empty((clip.num_frames, frame_size, frame_size, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    for frame_index in range(clip.num_frames):
        for obj in clip.objects:
            if obj.visible_from <= frame_index <= obj.visible_until:
                mask = _shape_mask(
                    obj.shape, grid_x, grid_y,
                    obj.center_at(frame_index, clip.num_frames), obj.radius_at(frame_index, clip.num_frames),
                )
                frames[frame_index][mask] = COLOURS[obj.colour]
    return frames
