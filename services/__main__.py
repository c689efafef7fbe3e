"""`python -m couples_nudge ...` is `nudge ...` (for environments without the console script)."""

from couples_nudge.entry import main

main()
