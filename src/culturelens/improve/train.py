"""LoRA fine-tuning of the model behind the ``hf`` backend: DPO and ORPO on preference pairs, SFT on
gold answers (PEFT + TRL, ``pip install 'culturelens[improve]'``).

The base model is loaded exactly as ``--model hf:SPEC`` loads it (:class:`~culturelens.backends.hf.HFBackend`:
the embedded GGUF is dequantised once into ``$CULTURELENS_HOME/hf-dequantised/<sha256>/`` and read
from there), so training starts from the weights the evaluation scored. The result is saved twice:
the LoRA adapter (``adapter/``) and the adapter merged into the base weights (``merged/``), a plain
transformers folder that ``--model hf:PATH`` loads.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from culturelens.errors import BackendError

METHODS = ("dpo", "orpo", "sft")
#: the linear layers LoRA adapts (Llama / SmolLM2 / Gemma names; PEFT skips the ones a model lacks)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MARKER = "culturelens_improve.json"


class TrainError(ValueError):
    """Training cannot start (missing packages, a model that is not an hf model, bad settings)."""


@dataclass
class TrainSettings:
    method: str = "dpo"
    steps: int = 60
    learning_rate: float = 5e-4
    batch_size: int = 4
    lora_r: int = 16
    lora_alpha: int = 32
    beta: float = 0.1  # DPO's KL strength; ORPO's odds-ratio weight (its lambda)
    max_length: int = 512
    seed: int = 0
    device: str | None = None  # cuda when torch sees one, else cpu
    threads: int = 2  # torch CPU threads

    def check(self) -> None:
        if self.method not in METHODS:
            raise TrainError(f"method {self.method!r}: choose from {', '.join(METHODS)}")
        if self.steps < 1:
            raise TrainError(f"steps {self.steps}: give a positive number of optimisation steps")
        if self.batch_size < 1:
            raise TrainError(f"batch size {self.batch_size}: give a positive number")
        if not self.learning_rate > 0:
            raise TrainError(f"learning rate {self.learning_rate}: give a positive number")


@dataclass
class TrainResult:
    method: str
    steps: int
    examples: int
    losses: list[float]
    seconds: float
    device: str
    adapter: str
    merged: str
    base: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def first_loss(self) -> float:
        k = max(1, len(self.losses) // 5)
        return sum(self.losses[:k]) / k

    @property
    def last_loss(self) -> float:
        k = max(1, len(self.losses) // 5)
        return sum(self.losses[-k:]) / k

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "first_loss": self.first_loss, "last_loss": self.last_loss}


def _require() -> dict[str, str]:
    try:
        import peft
        import trl
    except ImportError as exc:
        raise TrainError(
            f"culturelens improve needs trl and peft ({exc.name} is not installed): "
            "pip install 'culturelens[improve]'"
        ) from None
    import torch
    import transformers

    return {
        "trl": trl.__version__,
        "peft": peft.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }


def hf_spec(model: str) -> str:
    """The hf backend spec of ``model`` (``default`` / ``embedded`` / ``hf:SPEC``); training needs
    transformers weights, so other backends are refused with one line."""
    if model in ("default", "embedded", "llamacpp:embedded"):
        return "embedded"
    prefix, sep, spec = model.partition(":")
    if sep and prefix == "hf" and spec:
        return spec
    raise TrainError(
        f"model {model!r}: improve fine-tunes through transformers; give --model hf:ID_OR_PATH "
        "(or default, the embedded SmolLM2 through the hf backend)"
    )


def load_base(model: str, device: str | None = None, threads: int = 2) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, identity) of ``model`` loaded in float32 as the hf backend loads it."""
    from culturelens.backends.hf import HFBackend

    try:
        backend = HFBackend(hf_spec(model), device=device, dtype="float32", n_threads=threads)
    except BackendError as exc:
        raise TrainError(str(exc)) from None
    identity = {**backend.identity(), "loaded_from": backend.loaded_from, "spec": model}
    return backend.model, backend.tok, identity


def _log_losses(history: Sequence[dict[str, Any]]) -> list[float]:
    return [float(h["loss"]) for h in history if "loss" in h and "train_loss" not in h]


def train(
    model: str,
    rows: Sequence[dict[str, Any]],
    out: Path,
    settings: TrainSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fine-tune ``model`` on ``rows`` (pairs for dpo / orpo, prompt + completion for sft) and save the
    adapter and the merged model under ``out``. Offline: nothing is fetched from the hub."""
    cfg = settings or TrainSettings()
    cfg.check()
    versions = _require()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    need = ("prompt", "completion") if cfg.method == "sft" else ("prompt", "chosen", "rejected")
    data = [{k: r[k] for k in need} for r in rows]
    if not data:
        raise TrainError(f"no training rows for {cfg.method}")
    for i, r in enumerate(data, start=1):
        bad = [k for k in need if not isinstance(r[k], str) or not r[k]]
        if bad:
            raise TrainError(f"training row {i}: field {bad[0]} is empty or not text")

    import torch
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from peft import LoraConfig, get_peft_model

    disable_progress_bar()  # the dataset preparation bars; the loop prints its own lines

    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    torch.manual_seed(cfg.seed)
    say = log or (lambda _msg: None)
    base_model, tok, identity = load_base(model, device=device, threads=cfg.threads)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    base_model.train()
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(base_model, lora)
    out.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "output_dir": str(out / "trainer"),
        "max_steps": cfg.steps,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": 1,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "use_cpu": device == "cpu",
        "bf16": False,
        "fp16": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "max_length": cfg.max_length,
        # small models on CPU: recomputing activations costs more time than their memory is worth
        "gradient_checkpointing": False,
    }
    dataset = Dataset.from_list(data)
    trainer: Any
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cfg.method == "dpo":
            from trl import DPOConfig, DPOTrainer

            trainer = DPOTrainer(
                model=peft_model,
                args=DPOConfig(**common, beta=cfg.beta),
                train_dataset=dataset,
                processing_class=tok,
            )
        elif cfg.method == "orpo":
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer

            trainer = ORPOTrainer(
                model=peft_model,
                args=ORPOConfig(**common, beta=cfg.beta, remove_unused_columns=False),
                train_dataset=dataset,
                processing_class=tok,
            )
        else:
            from trl import SFTConfig, SFTTrainer

            trainer = SFTTrainer(
                model=peft_model,
                args=SFTConfig(**common, completion_only_loss=True),
                train_dataset=dataset,
                processing_class=tok,
            )
    say(f"training {cfg.method} on {len(data)} examples for {cfg.steps} steps ({device})")
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    losses = _log_losses(trainer.state.log_history)
    trained = trainer.model
    adapter_dir, merged_dir = out / "adapter", out / "merged"
    trained.save_pretrained(str(adapter_dir))
    tok.save_pretrained(str(adapter_dir))
    merged = trained.merge_and_unload()
    merged.eval()
    merged.to("cpu")
    merged.save_pretrained(str(merged_dir))
    tok.save_pretrained(str(merged_dir))
    result = TrainResult(
        method=cfg.method,
        steps=cfg.steps,
        examples=len(data),
        losses=losses,
        seconds=round(seconds, 2),
        device=device,
        adapter=str(adapter_dir),
        merged=str(merged_dir),
        base=identity,
        settings=asdict(cfg),
        versions=versions,
    )
    record = result.to_json()
    for d in (adapter_dir, merged_dir):
        (d / MARKER).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    # the trainer's scratch folder (no checkpoints are saved) is not part of the result
    scratch = out / "trainer"
    if scratch.is_dir() and not any(scratch.iterdir()):
        scratch.rmdir()
    return result
