"""Load the paper's dataset JSON as-is.

Accepted shapes: `{"dictionary": {...}, "ground_truth_data": [{"input": [keys], "values": [ints],
"output": [prefix sums]}, ...]}`, optionally nested under `"dict_sum"`. Rows may also carry an `id`.
`--samples/--turns/--k` take a prefix: the first N rows and, in each, the first turns*K keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lhe_tui.errors import DatasetError
from lhe_tui.task.model import Sample, Task


def _fail(path: Path, what: str) -> DatasetError:
    return DatasetError(f"dataset {path}: {what}")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read ({exc.__class__.__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _dictionary(path: Path, data: dict[str, Any]) -> dict[str, int]:
    raw = data.get("dictionary")
    if raw is None and (path.parent / "dictionary.json").exists():
        raw = _read_json(path.parent / "dictionary.json")
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "missing or empty 'dictionary' object")
    for key, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, f"dictionary value for {key!r} is not an integer")
    return dict(raw)


def _rows(path: Path, data: dict[str, Any]) -> list[Any]:
    rows = data.get("ground_truth_data")
    if not isinstance(rows, list) or not rows:
        raise _fail(path, "missing or empty 'ground_truth_data' list")
    return rows


def _sample(path: Path, row: Any, index: int, dictionary: dict[str, int], n_keys: int, k: int) -> Sample:
    where = f"ground_truth_data[{index}]"
    if not isinstance(row, dict):
        raise _fail(path, f"{where} is not an object")
    keys, values, output = row.get("input"), row.get("values"), row.get("output")
    if not isinstance(keys, list) or not all(isinstance(x, str) for x in keys):
        raise _fail(path, f"{where}.input must be a list of strings")
    if len(keys) < n_keys:
        raise _fail(path, f"{where} has {len(keys)} keys, fewer than turns*k = {n_keys}")
    keys = keys[:n_keys]
    unknown = next((key for key in keys if key not in dictionary), None)
    if unknown is not None:
        raise _fail(path, f"{where}.input has key {unknown!r} that is not in the dictionary")
    expected = [dictionary[key] for key in keys]
    if values is not None:
        if not isinstance(values, list) or values[:n_keys] != expected:
            raise _fail(path, f"{where}.values disagree with the dictionary")
    if output is not None:
        running, sums = 0, []
        for v in expected:
            running += v
            sums.append(running)
        if not isinstance(output, list) or output[:n_keys] != sums:
            raise _fail(path, f"{where}.output is not the running sum of its values")
    return Sample(index=index, keys=tuple(keys), values=tuple(expected), k=k)


def load_dataset(path: str | Path, n_samples: int, turns: int, k: int) -> Task:
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("dict_sum"), dict):
        data = data["dict_sum"]
    if not isinstance(data, dict):
        raise _fail(path, "top level must be an object with 'dictionary' and 'ground_truth_data'")
    dictionary = _dictionary(path, data)
    rows = _rows(path, data)
    if n_samples > len(rows):
        raise _fail(path, f"has {len(rows)} samples, fewer than --samples {n_samples}")
    samples = tuple(_sample(path, rows[i], i, dictionary, turns * k, k) for i in range(n_samples))
    return Task(dictionary=dictionary, samples=samples, k=k, turns=turns, source=str(path))
