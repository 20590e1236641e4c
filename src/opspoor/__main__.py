import sys

try:
    from opspoor.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still loading: nothing was done yet
    sys.stderr.write(
        "interrupted; run the same command to resume\n" if sys.argv[1:2] == ["scan"] else "interrupted\n"
    )
    sys.exit(130)

main()
