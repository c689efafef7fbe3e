"""`python -m services ...` is `nudge ...` (for environments without the console script)."""

from services.cli import app

app(prog_name="nudge")
