"""Whether the TUI may resume a stored run (`LheApp.resume_session` turns a refusal into a notification).

`lhe-tui resume ID` quietly adds nothing to a complete session; in the TUI the user is told why instead.
No Textual here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lhe_tui.store.locks import holder_label, writer_alive
from lhe_tui.store.queries import ALIVE_SECONDS, load_session, nothing_to_resume

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["ALIVE_SECONDS", "resume_problem"]


def resume_problem(db: Database, session_id: str, *, now: float | None = None) -> str | None:
    """Why the session cannot be resumed, or None when it can (an unfinished run that nothing is driving)."""
    session = load_session(db, session_id)
    if session["kind"] != "run":
        return f"session {session_id} is a {session['kind']} session; only runs can be resumed"
    complete = nothing_to_resume(db, session)
    if complete is not None:
        return f"session {session_id} is complete ({complete[0]} of {complete[1]} turns): nothing to resume"
    last = db.execute("SELECT MAX(finished_at) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
    if getattr(db, "readonly", False):
        return f"{getattr(db, 'path', 'the store')} is read-only: a run cannot be resumed there"
    path = getattr(db, "path", None)
    alive = writer_alive(path, session_id) if path is not None else None
    if alive:
        return (f"session {session_id} is being run by another process ({holder_label(path, session_id)}); stop it "
                "there first")
    if alive is None and session.get("status") == "running" and last is not None:
        age = (time.time() if now is None else now) - last
        if age < ALIVE_SECONDS:
            return (f"session {session_id} looks alive: a turn was stored {age:.0f} s ago (another lhe-tui may "
                    f"be running it); if it has stopped, try again in {ALIVE_SECONDS - age:.0f} s")
    return None
