"""walkout_tracking."""

__version__ = "0.1.0"
