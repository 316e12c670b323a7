"""Real store faults for the tests: a store with a garbage page in the middle, a full file system (a small
tmpfs), a read-only mount. Nothing is mocked: the files and file systems are real."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lhe_tui.core.config import RunConfig
from lhe_tui.runs.session import prepare_run
from lhe_tui.store.database import open_database

ROOT = Path(__file__).resolve().parent.parent


def stored_run(db_path: Path, *, samples: int = 4, turns: int = 200, seed: int = 3) -> str:
    """A finished sim session (enough turns for a few hundred pages), the store closed (WAL checkpointed)."""
    db = open_database(db_path)
    prepared = prepare_run(RunConfig(samples=samples, turns=turns, seed=seed, mode="cot", sim_delay=0.0,
                                     sim_base_error=0.01), db, stream_deltas=False)
    asyncio.run(prepared.runner.run())
    db.conn.close()
    return prepared.session_id


def corrupt_middle_page(db_path: Path) -> int:
    """Garbage over the page in the middle of the file (the header, page 1, intact); returns its number."""
    assert not Path(str(db_path) + "-wal").exists() or Path(str(db_path) + "-wal").stat().st_size == 0
    data = db_path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = len(data) // page_size
    # The turns table's leaf page nearest the middle (dbstat), so the damage hits stored turns whatever
    # the other tables and indexes add; the middle page itself where dbstat is not compiled in.
    page = pages // 2 + 1
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            leaves = [row[0] for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'turns' AND pagetype = 'leaf'")]
        conn.close()
        if leaves:
            page = min(leaves, key=lambda p: abs(p - page))
    except sqlite3.Error:
        pass
    assert page > 1
    garbage = random.Random(page).randbytes(page_size)
    with open(db_path, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(garbage)
    return page


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`lhe-tui ARGS` in a process of its own (its stderr is what a user sees)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lhe_tui", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=ROOT)


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A real small file system at `where` (root and `mount` needed: skips otherwise)."""
    if not can_mount():
        pytest.skip("needs root and mount(8) for a real small file system")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextlib.contextmanager
def read_only_view(folder: Path, where: Path):
    """`folder` seen read-only at `where`: a read-only bind mount as root (root ignores a directory's
    permission bits), else the permission bits."""
    if can_mount():
        where.mkdir(parents=True, exist_ok=True)
        ok = subprocess.run(["mount", "--bind", str(folder), str(where)], capture_output=True).returncode == 0
        if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(where)],
                                 capture_output=True).returncode == 0:
            try:
                yield where
            finally:
                subprocess.run(["umount", "-l", str(where)], capture_output=True)
            return
        if ok:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root, and no read-only bind mount possible: nothing here is read-only to root")
    modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield folder
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


OTHER_USER = 65534   # nobody


def give_away(*paths: Path) -> None:
    """As root: `paths` (and what is under them) owned by another user, so their permission bits bind a root
    without DAC_OVERRIDE (`cli_unprivileged`). Anyone else: left as they are (their own bits bind them)."""
    if os.geteuid() != 0:
        return
    for path in paths:
        for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(p, OTHER_USER, OTHER_USER, follow_symlinks=False)


def cli_unprivileged(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`lhe-tui ARGS` as a user whom file permissions bind. As root: root without the capabilities that
    override them (setpriv --bounding-set -dac_override,-dac_read_search), on files `give_away` gave to
    another user; the interpreter and the code stay readable (root owns them). Anyone else: as is."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root, and no setpriv(1) to drop the capabilities that override file permissions")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, sys.executable, "-m", "lhe_tui", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=ROOT)
