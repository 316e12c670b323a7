"""Session, group and sweep ids: one stamp format, told apart by prefix, shortened the same way everywhere."""

from __future__ import annotations

import re
import time

from lhe_tui.core.lineage import new_id, short_id
from lhe_tui.runs.session import new_session_id
from lhe_tui.store.groups import is_group_id, new_group_id
from lhe_tui.store.sweeps import is_sweep_id, new_sweep_id

STAMP = r"(\d{8})-(\d{6})-[0-9a-f]{4}"


def test_a_session_id_is_the_start_time_and_four_hex_digits():
    before = time.strftime("%Y%m%d")
    found = re.fullmatch(STAMP, new_session_id())
    assert found is not None
    assert found.group(1) in {before, time.strftime("%Y%m%d")}  # the date it was made (midnight allowed)


def test_group_and_sweep_ids_carry_their_prefix_and_are_not_mistaken_for_each_other():
    group, sweep, session = new_group_id(), new_sweep_id(), new_session_id()
    assert re.fullmatch("grp-" + STAMP, group) and re.fullmatch("swp-" + STAMP, sweep)
    assert is_group_id(group) and not is_sweep_id(group)
    assert is_sweep_id(sweep) and not is_group_id(sweep)
    assert not is_group_id(session) and not is_sweep_id(session)


def test_ids_made_in_the_same_second_differ():
    made = {new_id() for _ in range(64)}
    assert len(made) > 60  # 16 random bits: 0.03 collisions expected in 64 draws; without them all 64 would match


def test_short_id_drops_only_a_date_and_never_empties_an_id():
    assert short_id("20261206-071000-ab12") == "071000-ab12"
    assert short_id("20261206-") == "20261206-"
    assert short_id("grp-20261206-071000-ab12") == "grp-20261206-071000-ab12"
    assert short_id("2026126-071000-ab12") == "2026126-071000-ab12"
    assert short_id("my-run") == "my-run"
