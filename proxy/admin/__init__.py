"""Administration: accounts and sessions (auth), the review web UI (ui) and the JSON admin API."""
