"""`python -m couples_nudge ...` is `nudge ...` (for environments without the console script)."""

from couples_nudge.cli import app

app(prog_name="nudge")
