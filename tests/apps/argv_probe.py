"""A Python service that reports what kind of program it is, then exits with status 3."""

import os
import signal
import sys

print(
    f"ARGV {sys.argv!r} name={__name__} init-loaded={'init.main' in sys.modules} "
    f"pid1={os.getpid() == 1} sigterm={signal.getsignal(signal.SIGTERM) is signal.SIG_DFL}",
    flush=True,
)
if __name__ == "__main__":
    sys.exit(3)
