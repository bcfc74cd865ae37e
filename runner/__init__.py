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

    try:
        cli_main()
    finally:
        # The interpreter's last garbage collections at exit walk every object of every module
        # imported (10-20 ms of a short run); frozen objects are left to the process's end.
        import gc

        gc.freeze()
