"""lhe-tui's first prompt (now the `lhe-v1` template, prompts/lhe-v1.toml, which renders it byte for byte;
a test keeps the two in step), and `parse_dictionary` for test doubles that read the task from a prompt.

Runs take their prompt from a template (lhe_tui.task.templates); nothing in the app parses a prompt.
"""

from __future__ import annotations

import ast
import json
from typing import Literal

Mode = Literal["direct", "cot", "thinking"]
MODES: tuple[str, ...] = ("direct", "cot", "thinking")

# The few-shot example uses a different dictionary from any task (fruit names are not five-letter
# words of the shipped list's sampling, and values are small) so it cannot leak answers.
EXAMPLE_DICTIONARY = {"apple": 5, "banana": 10, "cherry": 3, "grape": -7, "kiwi": 2, "mango": 8}
_EXAMPLE_TURNS = (("apple",), ("cherry",), ("grape",), ("mango",))
_EXAMPLE_TURNS_K2 = (("apple", "banana"), ("cherry", "grape"), ("kiwi", "mango"))


def _example(k: int, mode: Mode) -> str:
    turns = _EXAMPLE_TURNS if k == 1 else _EXAMPLE_TURNS_K2
    lines, total = [], 0
    for keys in turns:
        values = [EXAMPLE_DICTIONARY[key] for key in keys]
        previous, total = total, total + sum(values)
        lines.append(f"User: {', '.join(keys)}")
        if mode == "cot":
            terms = " + ".join(f"{key} ({value})" for key, value in zip(keys, values))
            lines.append(f"Assistant: Previous total {previous}; {terms}; {previous} + {sum(values)} = {total}. "
                         f"<answer>{total}</answer>")
        else:
            lines.append(f"Assistant: <answer>{total}</answer>")
    return "\n".join(lines)


def system_prompt(dictionary: dict[str, int], k: int, mode: Mode) -> str:
    group = "one key" if k == 1 else f"{k} keys (comma-separated)"
    if mode == "cot":
        style = ("Think step by step briefly: state the previous total, the value of each new key and the "
                 "new total, then give the running sum in <answer></answer> tags.")
    else:
        style = ("Respond ONLY with the running sum in <answer></answer> tags. "
                 "Do not output any other text outside the answer tags.")
    return (
        "You are keeping a running total. I will give you a dictionary mapping words to integers. "
        f"Then, each turn, I will give you {group} from the dictionary. Add the value of each key to the "
        "running total (which starts at 0) and reply with the new running total.\n"
        f"{style}\n\n"
        f"Example with dictionary {json.dumps(EXAMPLE_DICTIONARY)} (keys in groups of {1 if k == 1 else 2}):\n"
        f"{_example(k, mode)}\n\n"
        "Now the actual task.\n"
        f"Dictionary to maintain: {json.dumps(dictionary)}\n"
        "Ready to start."
    )


def user_turn(keys: tuple[str, ...] | list[str]) -> str:
    return ", ".join(keys)


def parse_dictionary(system: str) -> dict[str, int] | None:
    """Read the task dictionary back out of a system prompt (test doubles do, as a model would): lhe-v1's
    `Dictionary to maintain: {json}` line, else the last line that is a whole Python dict literal (the
    default template's dictionary line; its worked example's dictionary comes earlier)."""
    marker = "Dictionary to maintain: "
    start = system.find(marker)
    if start < 0:
        for line in reversed(system.splitlines()):
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    data = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(data, dict):
                    return data
        return None
    line = system[start + len(marker):].split("\n", 1)[0]
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
