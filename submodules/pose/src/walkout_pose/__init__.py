"""walkout_pose."""

__version__ = "0.1.0"
