"""Heara: everything from labeled Korean utterances up to a registered model."""

__version__ = "0.1.0"
