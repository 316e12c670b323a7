import json

import pytest

from lhe_tui.common.errors import ConfigError, DatasetError
from lhe_tui.task import generate_task, load_dataset
from lhe_tui.task.prompts import parse_dictionary, system_prompt, user_turn
from lhe_tui.task.words import load_words


def test_word_list_is_five_letter_lowercase_and_large():
    words = load_words()
    assert len(words) > 1000
    assert all(len(w) == 5 and w.isalpha() and w.islower() for w in words)
    assert len(set(words)) == len(words)


def test_same_seed_same_task_different_seed_different_task():
    a, b, c = (generate_task(seed, n_samples=3, turns=20, k=2) for seed in (1, 1, 2))
    assert a == b
    assert a.dictionary != c.dictionary
    assert len(a.dictionary) == 100
    assert all(-99 <= v <= 99 for v in a.dictionary.values())


def test_turn_keys_and_gold_sums():
    task = generate_task(7, n_samples=1, turns=5, k=3)
    sample = task.samples[0]
    assert len(sample.keys) == 15
    assert sample.turn_keys(2) == sample.keys[3:6]
    gold = sample.gold_sums()
    assert gold[0] == sum(task.dictionary[key] for key in sample.keys[:3])
    assert gold[-1] == sum(task.dictionary[key] for key in sample.keys)


def test_bad_numbers_are_config_errors():
    with pytest.raises(ConfigError):
        generate_task(0, n_samples=0, turns=5)
    with pytest.raises(ConfigError):
        generate_task(0, n_samples=1, turns=5, dict_size=10**6)
    with pytest.raises(ConfigError):
        generate_task(0, n_samples=1, turns=5, min_value=5, max_value=1)


def test_prompt_carries_dictionary_and_rules():
    task = generate_task(3, n_samples=1, turns=2)
    prompt = system_prompt(task.dictionary, 1, "direct")
    assert parse_dictionary(prompt) == task.dictionary
    assert "<answer>" in prompt and "running" in prompt
    assert "apple" in prompt  # few-shot example uses a different dictionary
    assert not any(word in task.dictionary for word in ("apple", "banana", "cherry"))
    assert user_turn(("a", "b")) == "a, b"
    assert "step by step" in system_prompt(task.dictionary, 2, "cot")


def _paper_dataset(tmp_path, nested=False, rows=2, n=6):
    task = generate_task(42, n_samples=rows, turns=n, k=1)
    data = {"dictionary": task.dictionary, "ground_truth_data": [
        {"id": i, "input": list(s.keys), "values": list(s.values),
         "output": [sum(s.values[: j + 1]) for j in range(n)]} for i, s in enumerate(task.samples)]}
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"dict_sum": data} if nested else data))
    return path, task


@pytest.mark.parametrize("nested", [False, True])
def test_paper_dataset_loads_as_is_and_takes_a_prefix(tmp_path, nested):
    path, task = _paper_dataset(tmp_path, nested)
    loaded = load_dataset(path, n_samples=2, turns=3, k=2)
    assert loaded.dictionary == task.dictionary
    assert loaded.samples[1].keys == task.samples[1].keys[:6]
    assert loaded.samples[0].gold_sums() == [sum(task.samples[0].values[: 2 * t]) for t in (1, 2, 3)]


def test_dictionary_json_beside_dataset(tmp_path):
    path, task = _paper_dataset(tmp_path)
    data = json.loads(path.read_text())
    (tmp_path / "dictionary.json").write_text(json.dumps(data.pop("dictionary")))
    path.write_text(json.dumps(data))
    assert load_dataset(path, 1, 3, 1).dictionary == task.dictionary


@pytest.mark.parametrize("mutate, message", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: json.dumps("rows"), "top level"),
    (lambda d: json.dumps([1, 2]), "dictionary"),  # a list of rows: its dictionary.json is missing
    (lambda d: json.dumps({"ground_truth_data": d["ground_truth_data"]}), "dictionary"),
    (lambda d: json.dumps({**d, "ground_truth_data": []}), "ground_truth_data"),
    (lambda d: json.dumps({**d, "ground_truth_data": [{**d["ground_truth_data"][0], "input": ["zzzzz"] * 6}] * 2}),
     "not in the dictionary"),
    (lambda d: json.dumps({**d, "ground_truth_data": [{**d["ground_truth_data"][0], "output": [0] * 6}] * 2}),
     "running sum"),
    (lambda d: json.dumps({**d, "ground_truth_data": [{**d["ground_truth_data"][0], "values": [0] * 6}] * 2}),
     "values disagree"),
])
def test_malformed_dataset_names_what_is_wrong(tmp_path, mutate, message):
    path, _ = _paper_dataset(tmp_path)
    path.write_text(mutate(json.loads(path.read_text())))
    with pytest.raises(DatasetError, match=message):
        load_dataset(path, 2, 3, 1)


@pytest.mark.parametrize("shape", ["list", "jsonl"])
def test_public_dataset_rows_with_dictionary_json_beside(tmp_path, shape):
    """The public dataset's shape: rows {id, input, values, output}, the dictionary in dictionary.json."""
    path, task = _paper_dataset(tmp_path, rows=3)
    data = json.loads(path.read_text())
    (tmp_path / "dictionary.json").write_text(json.dumps(data["dictionary"]))
    rows = data["ground_truth_data"]
    path = tmp_path / ("rows.json" if shape == "list" else "rows.jsonl")
    path.write_text(json.dumps(rows) if shape == "list" else "".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_dataset(path, 2, 3, 2, offset=1)
    assert loaded.dictionary == task.dictionary
    assert [s.keys for s in loaded.samples] == [task.samples[i].keys for i in (1, 2)]
    assert [s.index for s in loaded.samples] == [0, 1]
    if shape == "jsonl":
        path.write_text(path.read_text() + "{oops\n")
        with pytest.raises(DatasetError, match="line 4 is not valid JSON"):
            load_dataset(path, 1, 1, 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([rows[0], 7]))
    with pytest.raises(DatasetError, match="row 1 is not an object"):
        load_dataset(bad, 2, 1, 1)


def test_dataset_offset_and_turns_default(tmp_path):
    from lhe_tui.task.dataset import dataset_turns

    path, task = _paper_dataset(tmp_path, rows=4, n=7)
    loaded = load_dataset(path, 2, 3, 1, offset=2)
    assert [s.keys for s in loaded.samples] == [task.samples[i].keys[:3] for i in (2, 3)]
    assert "rows 2..3" in loaded.source
    assert dataset_turns(path, 4, 1) == 7 and dataset_turns(path, 4, 2) == 3 and dataset_turns(path, 1, 3, 3) == 2
    data = json.loads(path.read_text())
    data["ground_truth_data"][3]["input"] = data["ground_truth_data"][3]["input"][:5]
    data["ground_truth_data"][3].pop("values")
    data["ground_truth_data"][3].pop("output")
    path.write_text(json.dumps(data))
    assert dataset_turns(path, 3, 1) == 7 and dataset_turns(path, 4, 1) == 5  # the shortest row used
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"dictionary": {"apple": 1}, "ground_truth_data": [{"input": ["apple"] * 500}]}))
    assert dataset_turns(big, 1, 1) == 100  # capped
    with pytest.raises(DatasetError, match="--dataset-offset 4 is beyond them"):
        load_dataset(path, 1, 1, 1, offset=4)
    with pytest.raises(DatasetError, match="--dataset-offset 9 is beyond them"):
        dataset_turns(path, 1, 1, 9)
    with pytest.raises(DatasetError, match="has 2 rows from row 2, fewer than --samples 3"):
        load_dataset(path, 3, 1, 1, offset=2)
    with pytest.raises(DatasetError, match="row 3 has 5 keys, fewer than --k 6"):
        dataset_turns(path, 1, 6, 3)


def test_dataset_too_short_or_too_few_samples(tmp_path):
    path, _ = _paper_dataset(tmp_path)
    with pytest.raises(DatasetError, match="fewer than turns"):
        load_dataset(path, 1, 4, 2)
    with pytest.raises(DatasetError, match="fewer than --samples"):
        load_dataset(path, 3, 1, 1)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing.json", 1, 1, 1)
