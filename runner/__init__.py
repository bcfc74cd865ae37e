"""taskrun: run the shell commands of a version-controlled task file on a bounded pool."""

__version__ = "0.1.0"
