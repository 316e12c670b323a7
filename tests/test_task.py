import json

import pytest

from lhe_tui.errors import ConfigError, DatasetError
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
    (lambda d: json.dumps([1, 2]), "top level"),
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


def test_dataset_too_short_or_too_few_samples(tmp_path):
    path, _ = _paper_dataset(tmp_path)
    with pytest.raises(DatasetError, match="fewer than turns"):
        load_dataset(path, 1, 4, 2)
    with pytest.raises(DatasetError, match="fewer than --samples"):
        load_dataset(path, 3, 1, 1)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing.json", 1, 1, 1)
