"""--dataset is streamed (issue 22 §4): one row parsed at a time, only the used rows' keys kept, and a file
that is malformed anywhere (also past the rows used) still refused in one line."""

import json
import tracemalloc

import pytest

from lhe_tui.common.errors import DatasetError
from lhe_tui.task import generate_task, load_dataset
from lhe_tui.task.dataset import dataset_turns


def reference_shape(rows: int, n: int, seed: int = 5) -> tuple[dict, list[dict]]:
    task = generate_task(seed, n_samples=rows, turns=n, k=1)
    out = []
    for s in task.samples:
        sums, running = [], 0
        for v in s.values:
            running += v
            sums.append(running)
        out.append({"input": list(s.keys), "values": list(s.values), "output": sums})
    return task.dictionary, out


def test_the_dictionary_after_the_rows_is_found(tmp_path):
    dictionary, rows = reference_shape(3, 8)
    path = tmp_path / "late.json"
    path.write_text(json.dumps({"ground_truth_data": rows, "dictionary": dictionary}))
    task = load_dataset(path, 2, 4, 2, offset=1)
    assert task.dictionary == dictionary
    assert [list(s.keys) for s in task.samples] == [r["input"] for r in rows[1:3]]
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps({"dict_sum": {"ground_truth_data": rows, "dictionary": dictionary}}))
    assert load_dataset(nested, 1, 8, 1, offset=2).samples[0].keys == tuple(rows[2]["input"])
    assert dataset_turns(nested, 3, 2) == 4


@pytest.mark.parametrize("name", ["cut.json", "cut.jsonl"])
def test_a_file_cut_short_past_the_used_rows_is_one_line(tmp_path, name):
    dictionary, rows = reference_shape(4, 6)
    path = tmp_path / name
    if name.endswith(".jsonl"):
        (tmp_path / "dictionary.json").write_text(json.dumps(dictionary))
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        text = json.dumps({"dictionary": dictionary, "ground_truth_data": rows})
    path.write_text(text[: len(text) - 40])   # the last row loses its end
    for load in (lambda: load_dataset(path, 1, 2, 1), lambda: dataset_turns(path, 1, 1)):
        with pytest.raises(DatasetError, match="not valid JSON") as caught:
            load()
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_malformed_json_says_so_in_one_line(tmp_path):
    path = tmp_path / "bad.json"
    for text in ('{"dictionary": {"a": 1}, "ground_truth_data": [{"input": ["a"]}] trailing',
                 '{"dictionary": {"a": 1}, "ground_truth_data": [{"input": ["a" "a"]}]}', "", "   \n", "{", "[",
                 "\xff\xfe", '{"dictionary": {"a": 1}, "ground_truth_data": [{"input": ["\xe9\x80"]}]}'):
        path.write_bytes(text.encode("latin-1"))
        with pytest.raises(DatasetError) as caught:
            load_dataset(path, 1, 1, 1)
        assert "\n" not in str(caught.value), text


def test_only_the_used_keys_are_kept_and_memory_stays_far_below_the_file(tmp_path):
    """40 rows of 20,000 keys (~20 MB as the reference indents it); one row's first 10 keys are used: the
    loader's peak (Python allocations) stays under a fifth of the file, where a whole read takes several times it."""
    dictionary, rows = reference_shape(40, 20_000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"dictionary": dictionary, "ground_truth_data": rows}, indent=2))
    size = path.stat().st_size
    del rows
    tracemalloc.start()
    try:
        task = load_dataset(path, 1, 10, 1, offset=39)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(task.samples) == 1 and len(task.samples[0].keys) == 10
    assert peak < size / 5, (peak, size)
