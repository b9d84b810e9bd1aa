"""Goalline: goal achievements and values for customer profiles (Altcraft API v1.1)."""

__version__ = "0.1.0"
