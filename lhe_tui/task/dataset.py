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

The file is streamed (ijson, issue 22 §4): one row is parsed at a time, and only the used rows' first
turns*K keys are kept, so the paper's full 250 MB file loads in tens of MB. Every row is still read, so a
malformed or cut-short file is refused in one line, as a file read whole would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lhe_tui.common.files import DATASET_LIMIT, UnreadableFile, open_bounded, read_bounded
from lhe_tui.common.errors import DatasetError
from lhe_tui.task.model import Sample, Task


def _fail(path: Path, what: str) -> DatasetError:
    return DatasetError(f"dataset {path}: {what}")


DEFAULT_MAX_TURNS = 100  # --turns unset with a dataset: what the rows hold, at most this
JSON_LINES = (".jsonl", ".ndjson")
T = TypeVar("T")


def _read_json(path: Path) -> Any:
    """A small JSON file (dictionary.json), read whole."""
    try:
        text = read_bounded(path, DATASET_LIMIT).decode("utf-8")
    except UnreadableFile as exc:
        raise _fail(path, str(exc)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _fail(path, f"cannot read ({exc.__class__.__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _stream(path: Path) -> BinaryIO:
    try:
        return open_bounded(path, DATASET_LIMIT)
    except UnreadableFile as exc:
        raise _fail(path, "file not found" if str(exc) == "no such file" else str(exc)) from None


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Whatever goes wrong while the file is streamed becomes one line naming it."""
    import ijson

    try:
        yield
    except UnreadableFile as exc:
        raise _fail(path, str(exc)) from None
    except UnicodeDecodeError as exc:
        raise _fail(path, f"cannot read ({exc.__class__.__name__})") from None
    except ijson.JSONError as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise _fail(path, f"not valid JSON ({first})") from None
    except (OSError, ValueError) as exc:
        raise _fail(path, f"cannot read ({exc.__class__.__name__})") from None


def _shape(path: Path) -> str:
    """'lines' (JSON Lines), 'list' (a JSON list of rows), 'object' or 'nested' (under "dict_sum")."""
    if path.suffix.lower() in JSON_LINES:
        with _stream(path):   # refused at once if not a regular file of a dataset's size
            return "lines"
    import ijson

    with _reading(path), _stream(path) as f:
        events = ijson.parse(f)
        first = next(events, None)
        if first is None:
            raise _fail(path, "not valid JSON (the file is empty)")
        if first[1] == "start_array":
            return "list"
        if first[1] != "start_map":
            raise _fail(path, "top level must be an object with 'dictionary' and 'ground_truth_data', or a list of rows")
        key = next(events, None)
        nested = key is not None and key[1] == "map_key" and key[2] == "dict_sum"
        if nested and next(events, (None, None))[1] == "start_map":
            return "nested"
        return "object"


def _base(shape: str) -> str:
    return "dict_sum." if shape == "nested" else ""


def _stream_rows(path: Path, shape: str) -> Iterator[Any]:
    """The rows, one at a time, as parsed."""
    import ijson

    if shape == "lines":
        with _reading(path), _stream(path) as f:
            for number, raw in enumerate(f, 1):
                line = raw.decode("utf-8")
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise _fail(path, f"line {number} is not valid JSON (column {exc.colno}: {exc.msg})") from None
                    yield row
        return
    prefix = "item" if shape == "list" else _base(shape) + "ground_truth_data.item"
    with _reading(path), _stream(path) as f:
        yield from ijson.items(f, prefix, use_float=True)


def _file_dictionary(path: Path, shape: str) -> Any:
    """The file's own "dictionary" value, None without one."""
    if shape in ("lines", "list"):
        return None
    import ijson

    with _reading(path), _stream(path) as f:
        return next(ijson.items(f, _base(shape) + "dictionary", use_float=True), None)


def _dictionary(path: Path, shape: str) -> dict[str, int]:
    raw = _file_dictionary(path, shape)
    beside = path.parent / "dictionary.json"
    if raw is None and beside.exists() and beside.resolve() != path.resolve():
        raw = _read_json(beside)
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "missing or empty 'dictionary' object (in the file, or dictionary.json beside it)")
    for key, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, f"dictionary value for {key!r} is not an integer")
    return dict(raw)


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


def _used(path: Path, shape: str, n_samples: int, offset: int, use: Callable[[Any, int], T]) -> list[T]:
    """`use(row, row_index)` of rows offset..offset+n_samples-1, the file streamed to its end (each row parsed
    and let go). Too few rows is said before a used row's fault."""
    used: list[T] = []
    fault: DatasetError | None = None
    count = 0
    for row in _stream_rows(path, shape):
        if offset <= count < offset + n_samples and fault is None:
            try:
                used.append(use(row, count))
            except DatasetError as exc:
                fault = exc
        count += 1
    if count == 0:
        raise _fail(path, "no rows ('ground_truth_data' missing or empty)")
    if offset >= count:
        raise _fail(path, f"has {count} rows; --dataset-offset {offset} is beyond them")
    if offset + n_samples > count:
        where = f" from row {offset}" if offset else ""
        raise _fail(path, f"has {count - offset} rows{where}, fewer than --samples {n_samples}")
    if fault is not None:
        raise fault
    return used


def _row_length(path: Path, row: Any, row_index: int) -> int:
    keys = row.get("input") if isinstance(row, dict) else None
    if not isinstance(keys, list):
        raise _fail(path, f"row {row_index}.input must be a list of strings")
    return len(keys)


def dataset_turns(path: str | Path, n_samples: int, k: int, offset: int = 0) -> int:
    """--turns unset: the turns every used row holds at K keys per turn, at most DEFAULT_MAX_TURNS."""
    path = Path(path)
    shape = _shape(path)
    _dictionary(path, shape)
    lengths = _used(path, shape, n_samples, offset, lambda row, i: _row_length(path, row, i))
    turns = min(lengths) // k
    if turns < 1:
        raise _fail(path, f"row {offset + lengths.index(min(lengths))} has {min(lengths)} keys, fewer than --k {k}")
    return min(turns, DEFAULT_MAX_TURNS)


def load_dataset(path: str | Path, n_samples: int, turns: int, k: int, offset: int = 0) -> Task:
    path = Path(path)
    shape = _shape(path)
    dictionary = _dictionary(path, shape)
    keys = turns * k
    samples = tuple(_used(path, shape, n_samples, offset,
                          lambda row, i: _sample(path, row, i - offset, dictionary, keys, k, i)))
    used = range(offset, offset + n_samples)
    source = f"{path} rows {used.start}..{used.stop - 1}" if offset else str(path)
    return Task(dictionary=dictionary, samples=samples, k=k, turns=turns, source=source)
