"""Airlock: a verifying, scanning mirror of the Hugging Face Hub."""

__version__ = "0.1.0"
