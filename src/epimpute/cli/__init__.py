"""The ``epimpute`` command: parses arguments, calls :mod:`epimpute.api`, prints results."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from epimpute.cli.parser import build_parser
from epimpute.errors import EpimputeError, Terminated
from epimpute.provenance import recording_command

log = logging.getLogger("epimpute")

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s")
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        with _sigterm_raises(), recording_command([parser.prog, *argv]):
            run(args)
    except EpimputeError as error:
        print(f"epimpute {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permissions, ...: the environment, not a bug
        print(f"epimpute {args.command}: error: {_describe(error)}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def _describe(error: OSError) -> str:
    """``PATH: reason`` of a failed system call."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device"
    where = error.filename if error.filename is not None else None
    return f"{where}: {reason}" if where else reason


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs, so that temporary files
    and folders are removed on the way out (only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
