"""Model strings: the ecosystem's ``provider/model`` forms (inspect_ai, lighteval, LiteLLM) beside
today's ``prefix:spec`` forms, each routed to the backend it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import mini_starter
from typer.testing import CliRunner

from culturelens.backends.openai import OpenAIBackend
from culturelens.backends.registry import load_backend, normalize_spec
from culturelens.cli import app
from culturelens.errors import BackendError
from culturelens.runner import RunConfig, Runner


@pytest.fixture(autouse=True)
def _no_base_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "VLLM_BASE_URL", "OLLAMA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # the provider/model forms
        ("openai/gpt-4o-mini", "openai:gpt-4o-mini"),
        ("openai/my-model@http://box:9000/v1", "openai:my-model@http://box:9000/v1"),
        ("hf/HuggingFaceTB/SmolLM2-360M-Instruct", "hf:HuggingFaceTB/SmolLM2-360M-Instruct"),
        ("hf/embedded", "hf:embedded"),
        ("vllm/meta-llama/Llama-3.1-8B-Instruct", "openai:meta-llama/Llama-3.1-8B-Instruct@http://localhost:8000/v1"),
        ("vllm/qwen@https://gpu.example:8443/v1", "openai:qwen@https://gpu.example:8443/v1"),
        ("ollama/llama3.1:8b", "openai:llama3.1:8b@http://localhost:11434/v1"),
        ("llama-cpp/embedded", "llamacpp:embedded"),
        ("llama-cpp//models/qwen2.5-7b-q4_k_m.gguf", "llamacpp:/models/qwen2.5-7b-q4_k_m.gguf"),
        ("llamacpp/embedded", "llamacpp:embedded"),  # a registered prefix works as a provider too
        ("fake/first", "fake:first"),
        # today's forms pass through untouched
        ("openai:gpt-4o-mini", "openai:gpt-4o-mini"),
        ("openai:llama3.1@http://localhost:8000/v1", "openai:llama3.1@http://localhost:8000/v1"),
        ("hf:HuggingFaceTB/SmolLM2-360M-Instruct", "hf:HuggingFaceTB/SmolLM2-360M-Instruct"),
        ("hf:org/repo#model.Q4.gguf", "hf:org/repo#model.Q4.gguf"),
        ("llamacpp:/models/qwen2.5-7b-instruct-q4_k_m.gguf", "llamacpp:/models/qwen2.5-7b-instruct-q4_k_m.gguf"),
        ("llamacpp:gemma3-270m", "llamacpp:gemma3-270m"),
        ("default", "llamacpp:embedded"),
        ("embedded", "llamacpp:embedded"),
        ("", "llamacpp:embedded"),
        # not a provider: left for load_backend to report
        ("mistral/mistral-large", "mistral/mistral-large"),
    ],
)  # fmt: skip
def test_normalize_spec(given: str, expected: str):
    assert normalize_spec(given) == expected


def test_local_servers_take_their_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VLLM_BASE_URL", "http://10.0.0.5:8001/v1")
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://10.0.0.6:11434/v1")
    assert normalize_spec("vllm/m") == "openai:m@http://10.0.0.5:8001/v1"
    assert normalize_spec("ollama/m") == "openai:m@http://10.0.0.6:11434/v1"
    # an explicit URL wins over the environment
    assert normalize_spec("vllm/m@http://other:1/v1") == "openai:m@http://other:1/v1"


@pytest.mark.parametrize(
    ("given", "model", "base_url"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini", "https://api.openai.com/v1"),
        ("vllm/meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "http://localhost:8000/v1"),
        ("ollama/llama3.1:8b", "llama3.1:8b", "http://localhost:11434/v1"),
        ("vllm/m@http://user:secret@gpu:8000/v1", "m", "http://gpu:8000/v1"),
    ],
)  # fmt: skip
def test_openai_compatible_providers_load_the_openai_backend(given: str, model: str, base_url: str):
    be = load_backend(given)
    assert isinstance(be, OpenAIBackend)
    assert be.identity() == {"backend": "openai", "model": model, "base_url": base_url}


def test_the_same_server_under_both_forms_has_one_identity():
    a = load_backend("vllm/qwen2.5")
    b = load_backend("openai:qwen2.5@http://localhost:8000/v1")
    assert a.identity() == b.identity()


@pytest.mark.parametrize(("given", "name"), [("hf/embedded", "hf"), ("llama-cpp/embedded", "llamacpp")])
def test_local_providers_reach_their_backend(given: str, name: str):
    """Routing without loading weights: the backend's own option check names it."""
    with pytest.raises(BackendError, match=rf"backend '{name}' \(\w+:embedded\) has no option 'bogus'"):
        load_backend(given, bogus=1)


@pytest.mark.parametrize("bad", ["vllm/", "ollama/  ", "openai/"])
def test_a_provider_without_a_model_is_one_line(bad: str):
    with pytest.raises(BackendError, match="names no model"):
        normalize_spec(bad)


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path):
    r = CliRunner().invoke(app, ["run", "--model", "vllm/", "--cache", str(tmp_path / "c"), "-q"])
    assert r.exit_code == 2 and "names no model" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(app, ["run", "--model", "mistral/large", "--cache", str(tmp_path / "c"), "-q"])
    assert r.exit_code == 2 and "unknown model spec 'mistral/large'" in r.output
    assert "vllm/MODEL" in r.output  # the message lists the provider forms


def test_both_forms_make_the_same_run(tmp_path: Path):
    """``fake/first`` and ``fake:first`` are one model: one run directory, and the second is reused."""
    data = mini_starter(tmp_path / "data").parent

    def run(model: str):
        cfg = RunConfig(
            model=model,
            data_dir=str(data),
            runs_root=str(tmp_path / "runs"),
            cache=str(tmp_path / "c.sqlite"),
        )
        return Runner(cfg).run()

    a = run("fake:first")
    b = run("fake/first")
    assert a.run_dir == b.run_dir and b.timing.get("reused") is True
    assert a.results["tasks"]["starter"]["metrics"] == b.results["tasks"]["starter"]["metrics"]


@pytest.mark.slow
def test_embedded_model_under_the_provider_form(tmp_path: Path):
    """The real embedded model through ``llama-cpp/embedded``: the same run as ``default``."""
    data = mini_starter(tmp_path / "data").parent

    def run(model: str):
        cfg = RunConfig(
            model=model,
            data_dir=str(data),
            runs_root=str(tmp_path / "runs"),
            cache=str(tmp_path / "c.sqlite"),
        )
        return Runner(cfg).run()

    a = run("llama-cpp/embedded")
    b = run("default")
    assert a.run_dir == b.run_dir and b.timing.get("reused") is True
    assert a.results["model"]["backend"] == "llamacpp"
