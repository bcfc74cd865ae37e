"""taskrun: run the shell commands of a version-controlled task file on a bounded pool."""

__version__ = "0.1.0"


def main() -> None:
    """The `taskrun` console script. `--version` is answered before the command-line
    framework is imported, so scripts that probe for taskrun pay for nothing else."""
    import sys

    if sys.argv[1:] == ["--version"]:
        print(f"taskrun {__version__}")
        return
    from .cli import main as cli_main

    cli_main()
