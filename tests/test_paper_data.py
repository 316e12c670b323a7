"""--data paper: the reference repository's generator, reimplemented, against the file its own code builds.

The gold values and digests below were read from dict_sum_100.json as the reference's generate_dataset_json.py
(github.com/long-horizon-execution/measuring-execution, commit d95e009) wrote it with Python 3.11.7 (sha256 of
the file: 0150b5c813a3f5ab89d32c2596b4671e0c6258735c5047e4f0d3488da0de4249; serialising our rows in its
shape with json.dumps(indent=2) gives the same bytes). Nothing of the reference's code is kept here.
"""

import hashlib
import json

import pytest

from lhe_tui.common.errors import ConfigError
from lhe_tui.task.paper_data import (PAPER_KEYS_PER_ROW, PAPER_ROWS, paper_dictionary, paper_rows, paper_task,
                                     paper_words)

# sha256 of json.dumps(the file's "dictionary") and of its rows' keys, one row a line, comma-separated
DICTIONARY_SHA256 = "9448bdb5dcde27e0d405691970ea29e3061ccbce1de384f64b097cc99dc61c23"
KEYS_SHA256 = "f006aa0ddd2322972f5a314d203eeb4c29f6b68cf7bf722fd8058dc652ebd1b2"
# row: (its first six keys, its last key, its running sums after keys 1, 6, 20, 60 and 50,000)
GOLD_ROWS = {
    0: (("alarm", "coach", "doubt", "cable", "above", "every"), "enjoy", (88, 45, 147, 359, 97244)),
    1: (("brief", "extra", "check", "crime", "album", "chair"), "agree", (-12, -216, -226, 230, 150242)),
    57: (("broad", "audio", "dress", "blind", "alone", "dress"), "could", (-95, -144, -447, -312, 123714)),
    58: (("child", "civil", "adult", "draft", "earth", "crime"), "allow", (-64, -129, 95, -679, 97507)),
    99: (("enter", "broad", "alarm", "bring", "dream", "craft"), "equal", (50, -90, 77, 27, 120108)),
}
SUM_AT = (1, 6, 20, 60, 50_000)


def test_the_word_file_is_the_reference_one():
    words = paper_words()
    assert len(words) == 101 and len(set(words)) == 101 and all(len(w) == 5 for w in words)
    assert words[:3] == ("about", "above", "admit") and words[-1] == "first"


def test_dictionary_is_the_reference_generators():
    dictionary = paper_dictionary()
    assert list(dictionary.items())[:3] == [("drive", -45), ("alone", 46), ("adult", 84)]
    assert list(dictionary.items())[-1] == ("block", -82)
    assert hashlib.sha256(json.dumps(dictionary).encode()).hexdigest() == DICTIONARY_SHA256


def test_all_rows_equal_the_reference_file():
    digest = hashlib.sha256()
    count = 0
    for row in paper_rows(PAPER_ROWS, PAPER_KEYS_PER_ROW):
        digest.update((",".join(row) + "\n").encode())
        count += 1
    assert count == 100 and digest.hexdigest() == KEYS_SHA256


@pytest.mark.parametrize("row", sorted(GOLD_ROWS))
def test_a_row_alone_is_the_same_row(row):
    """Rows are reached by skipping the draws before them: row R alone equals row R of the whole set."""
    first, last, sums = GOLD_ROWS[row]
    task = paper_task(1, PAPER_KEYS_PER_ROW, k=1, offset=row)
    sample = task.samples[0]
    assert sample.keys[:6] == first and sample.keys[-1] == last
    gold = sample.gold_sums()
    assert tuple(gold[t - 1] for t in SUM_AT) == sums
    assert task.source.endswith(f"rows {row}..{row}")


def test_k_groups_consecutive_keys_and_short_rows_skip_the_rest():
    task = paper_task(2, turns=2, k=3, offset=57)   # 6 keys of rows 57 and 58; the other 49,994 skipped
    first, second = task.samples
    assert (first.index, second.index) == (0, 1)
    assert first.turn_keys(1) == GOLD_ROWS[57][0][:3] and first.turn_keys(2) == GOLD_ROWS[57][0][3:]
    assert second.keys == GOLD_ROWS[58][0]
    assert first.gold_sums() == [-220, -144]           # the reference's running sums after keys 3 and 6
    assert task.dictionary == paper_dictionary() and task.k == 3 and task.turns == 2


def test_one_key_a_turn_from_row_zero():
    task = paper_task(3, turns=6)
    assert [s.keys for s in task.samples] == [GOLD_ROWS[0][0], GOLD_ROWS[1][0],
                                              ("alarm", "brand", "admit", "black", "first", "claim")]
    assert task.samples[0].gold_sums()[-1] == GOLD_ROWS[0][2][1]


@pytest.mark.parametrize("samples, turns, k, offset, needle", [
    (1, 1, 1, 100, "--data paper has 100 rows (0..99); --samples 1 from row 100 goes past them"),
    (101, 1, 1, 0, "--samples 101 goes past them"),
    (2, 1, 1, 99, "--samples 2 from row 99"),
    (1, 50_001, 1, 0, "--data paper has 50,000 keys a row; --turns x --k asks for 50,001"),
    (1, 25_001, 2, 0, "asks for 50,002"),
    (0, 1, 1, 0, "--samples must be at least 1"),
])
def test_out_of_range_is_one_line(samples, turns, k, offset, needle):
    with pytest.raises(ConfigError) as caught:
        paper_task(samples, turns, k, offset)
    assert needle in str(caught.value) and "\n" not in str(caught.value)
