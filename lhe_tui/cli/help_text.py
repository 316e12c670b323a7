"""Help texts that several commands share."""

THEME_HELP = "theme name (see themes/; default lhe-dark)"
ID_HELP = ("a session id, its start (20261123-1154), its end (115417-5b3c, as the TUI shows it) when only one "
           "session matches, or latest")
