"""UniTriM: one model that retrieves videos and images for a text query."""

__version__ = "0.1.0"
