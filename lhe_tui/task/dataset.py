"""Load the paper's dataset as-is.

Accepted shapes:
- the reference implementation's file: `{"dictionary": {...}, "ground_truth_data": [{"input": [keys],
  "values": [ints], "output": [prefix sums]}, ...]}`, optionally nested under `"dict_sum"`;
- the public dataset's rows: a JSON list of `{"id", "input", "values", "output"}` objects, or JSON Lines
  (`.jsonl`/`.ndjson`, one row per line), with the dictionary in `dictionary.json` beside the file.
A missing `dictionary` is read from `dictionary.json` beside the file in every shape. `values` and
`output` are optional and checked when present. `--dataset-offset/--samples/--turns/--k` take a slice:
rows offset..offset+samples-1 and, in each, the first turns*K keys. With --turns unset, `dataset_turns`
gives what the used rows hold at K (the shortest of them), at most DEFAULT_MAX_TURNS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lhe_tui.files import DATASET_LIMIT, UnreadableFile, read_bounded
from lhe_tui.errors import DatasetError
from lhe_tui.task.model import Sample, Task


def _fail(path: Path, what: str) -> DatasetError:
    return DatasetError(f"dataset {path}: {what}")


DEFAULT_MAX_TURNS = 100  # --turns unset with a dataset: what the rows hold, at most this
JSON_LINES = (".jsonl", ".ndjson")

# Files parsed by `dataset_turns` (the CLI's --turns default) for the `load_dataset` that follows, which
# takes them out again: the paper's full dataset parses to hundreds of MB, read once and not kept.
_kept: dict[tuple[str, int, int], Any] = {}


def _read_json(path: Path, keep: bool = False) -> Any:
    try:
        stat = path.stat()
        stamp = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        if stamp in _kept:
            return _kept[stamp] if keep else _kept.pop(stamp)
        text = read_bounded(path, DATASET_LIMIT).decode("utf-8")
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except UnreadableFile as exc:
        raise _fail(path, str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"cannot read ({exc.__class__.__name__})") from None
    if path.suffix.lower() in JSON_LINES:
        data: Any = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise _fail(path, f"line {number} is not valid JSON (column {exc.colno}: {exc.msg})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if keep:
        _kept.clear()
        _kept[stamp] = data
    return data


def _dictionary(path: Path, data: dict[str, Any]) -> dict[str, int]:
    raw = data.get("dictionary")
    beside = path.parent / "dictionary.json"
    if raw is None and beside.exists() and beside.resolve() != path.resolve():
        raw = _read_json(beside)
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "missing or empty 'dictionary' object (in the file, or dictionary.json beside it)")
    for key, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, f"dictionary value for {key!r} is not an integer")
    return dict(raw)


def _rows(path: Path, data: dict[str, Any]) -> list[Any]:
    rows = data.get("ground_truth_data")
    if not isinstance(rows, list) or not rows:
        raise _fail(path, "no rows ('ground_truth_data' missing or empty)")
    return rows


def _sample(path: Path, row: Any, index: int, dictionary: dict[str, int], n_keys: int, k: int,
            row_index: int) -> Sample:
    where = f"row {row_index}"
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


def _open(path: Path, keep: bool = False) -> tuple[dict[str, int], list[Any]]:
    """The dictionary and the rows of a dataset file, whatever its shape (`keep`: for the next `_open`)."""
    data = _read_json(path, keep)
    if isinstance(data, dict) and isinstance(data.get("dict_sum"), dict):
        data = data["dict_sum"]
    if isinstance(data, list):  # the public dataset's rows; the dictionary beside them
        data = {"ground_truth_data": data}
    if not isinstance(data, dict):
        raise _fail(path, "top level must be an object with 'dictionary' and 'ground_truth_data', or a list of rows")
    return _dictionary(path, data), _rows(path, data)


def _used_rows(path: Path, rows: list[Any], n_samples: int, offset: int) -> range:
    if offset >= len(rows):
        raise _fail(path, f"has {len(rows)} rows; --dataset-offset {offset} is beyond them")
    if offset + n_samples > len(rows):
        where = f" from row {offset}" if offset else ""
        raise _fail(path, f"has {len(rows) - offset} rows{where}, fewer than --samples {n_samples}")
    return range(offset, offset + n_samples)


def dataset_turns(path: str | Path, n_samples: int, k: int, offset: int = 0) -> int:
    """--turns unset: the turns every used row holds at K keys per turn, at most DEFAULT_MAX_TURNS."""
    path = Path(path)
    _, rows = _open(path, keep=True)
    lengths = []
    for i in _used_rows(path, rows, n_samples, offset):
        keys = rows[i].get("input") if isinstance(rows[i], dict) else None
        if not isinstance(keys, list):
            raise _fail(path, f"row {i}.input must be a list of strings")
        lengths.append(len(keys))
    turns = min(lengths) // k
    if turns < 1:
        raise _fail(path, f"row {offset + lengths.index(min(lengths))} has {min(lengths)} keys, fewer than --k {k}")
    return min(turns, DEFAULT_MAX_TURNS)


def load_dataset(path: str | Path, n_samples: int, turns: int, k: int, offset: int = 0) -> Task:
    path = Path(path)
    dictionary, rows = _open(path)
    used = _used_rows(path, rows, n_samples, offset)
    samples = tuple(_sample(path, rows[row], i, dictionary, turns * k, k, row) for i, row in enumerate(used))
    source = f"{path} rows {used.start}..{used.stop - 1}" if offset else str(path)
    return Task(dictionary=dictionary, samples=samples, k=k, turns=turns, source=source)
