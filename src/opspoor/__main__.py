import signal
import sys

# a scan notes a Ctrl-C that comes while the command loads (no KeyboardInterrupt in the middle of an
# import) and stops with its one line as the scan starts; other commands stop at once. (A command started with
# SIGINT ignored, as in the background of a script, keeps ignoring it.)
early: list[int] = []
if sys.argv[1:2] == ["scan"] and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    signal.signal(signal.SIGINT, lambda _sig, _frame: early.append(1))

try:
    from opspoor.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still loading: nothing was done yet
    sys.stderr.write("interrupted\n")
    sys.exit(130)

main(interrupted=bool(early))
