"""The remembered result of a store's integrity check: SQLite's quick_check once per change of the file, not
once per command (issue 22: 25.6 s a command on a 1.1 GB store with a cold cache).

A store found sound is remembered by its file's identity and last change (device, inode, size and mtime in
nanoseconds) in a small side record: `<store>-locks/checked.json` beside a store that can be written, else
under the user's cache folder (`$XDG_CACHE_HOME/lhe-tui/checked/`). A command that finds the file as
remembered skips the check; anything that changed the file since (a checkpoint of new turns, a tool, a disk
error written back) changes its mtime, and the next command checks it again. Only the main file is keyed:
the WAL's frames carry checksums (a damaged frame ends the WAL there), so a crashed writer's WAL never makes
a check stale. A run that started on a store known sound stamps the store sound again at its end, after
its last checkpoint (`stamp_after_writes`): its own writes do not cost the next command a full check.
`lhe-tui doctor` always checks fully. No Textual here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

Key = tuple[int, int, int, int]


def file_key(path: str | Path) -> Key | None:
    """The store file's (device, inode, size, mtime in ns); None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _records(path: Path) -> list[Path]:
    """Where the record may be, the store's side first."""
    from lhe_tui.store.locks import locks_dir

    places = [locks_dir(path) / "checked.json"]
    cache = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache")
                                                  if os.path.expanduser("~") != "~" else None)
    if cache:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24] + ".json"
        places.append(Path(cache) / "lhe-tui" / "checked" / name)
    return places


def known_sound(path: str | Path) -> bool:
    """Whether the store at `path` was found sound and has not changed since."""
    key = file_key(path)
    if key is None:
        return False
    for record in _records(Path(path)):
        try:
            if tuple(json.loads(record.read_text()).get("key", ())) == key:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def remember_sound(path: str | Path) -> None:
    """Record that the store at `path`, as it is now, passed the check (best effort: nowhere writable, no
    record, and the next command checks again)."""
    key = file_key(path)
    if key is None:
        return
    text = json.dumps({"path": str(Path(path).resolve()), "key": list(key)})
    for record in _records(Path(path)):
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            temporary = record.with_name(f".{record.name}.{os.getpid()}")
            temporary.write_text(text)
            os.replace(temporary, record)
            return
        except OSError:
            continue


def forget(path: str | Path) -> None:
    """Drop the record (the store was found damaged)."""
    for record in _records(Path(path)):
        try:
            record.unlink()
        except OSError:
            pass


def stamp_after_writes(path: str | Path, was_sound: bool) -> None:
    """A writer's end: if the store was known sound when its run began, it is sound as its writes left it."""
    if was_sound:
        remember_sound(path)
