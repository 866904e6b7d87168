"""A fixed bank of generic captions: what "any sentence" scores against an item (the relevance baseline).

The sentences describe everyday scenes of many kinds (people, animals, vehicles, places, objects, sports,
cooking, music, screens). None is about anything in particular a user searches for: against a real match the
query should score well above what these give the same item. Written for this library (not taken from a
benchmark), so the relevance benchmark's unrelated queries (MSR-VTT-style captions) are not among them.
"""

from __future__ import annotations

GENERIC_CAPTIONS: tuple[str, ...] = (
    "a person stands in a room",
    "people talk to each other",
    "a man speaks to the camera",
    "a woman smiles and waves",
    "a child plays with a toy",
    "an old man sits on a bench",
    "a crowd of people walks in a street",
    "two friends laugh at a table",
    "a dog runs across the grass",
    "a cat sleeps on a sofa",
    "birds sit on a wire",
    "a fish swims in a tank",
    "cows graze in a field",
    "a bus stops at the corner",
    "a plane takes off from a runway",
    "a bicycle leans against a wall",
    "traffic moves on a highway at night",
    "a ship is docked in a harbour",
    "trees sway in the wind",
    "rain falls on a window",
    "the sun sets over the mountains",
    "snow covers a quiet village",
    "waves roll onto the sand",
    "clouds drift across the sky",
    "a kitchen with pots and pans",
    "someone pours coffee into a cup",
    "a plate of food on a table",
    "vegetables are fried in a pan",
    "a living room with a television",
    "an office full of desks and computers",
    "a classroom with students",
    "shelves of books in a library",
    "a soccer player kicks the ball",
    "a runner crosses the finish line",
    "a team celebrates a goal",
    "a swimmer dives into the water",
    "a guitarist plays on stage",
    "an orchestra performs in a hall",
    "a singer holds a microphone",
    "a screen shows a news report",
    "a video game is being played",
    "a slideshow of photos with music",
    "hands type on a keyboard",
    "a phone rings on a desk",
    "a box is opened on a table",
    "a building under construction",
    "a market with fruit stands",
    "a garden full of flowers",
)


__all__ = ["GENERIC_CAPTIONS"]
