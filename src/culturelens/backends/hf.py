"""Hugging Face transformers backend: a hub id, a local model folder, or a GGUF file.

Specs: ``hf:ID_OR_PATH`` (hub id or local folder), ``hf:ID_OR_PATH#file.gguf`` (a GGUF file in
that repo / folder, dequantised by transformers), ``hf:/path/model.gguf``, and ``hf:embedded``
(the embedded SmolLM2 GGUF; also ``hf:smollm2``, ``hf:gemma3-270m``).

Dequantising a GGUF file is slow (tens of seconds even for a 135M model), so the dequantised
float32 model and its tokenizer are saved once to
``$CULTURELENS_HOME/hf-dequantised/<sha256 of the gguf>/`` (default ``~/.cache/culturelens``)
and loaded from there afterwards; option ``cache_dequantised=False`` turns this off.

Batching: requests are sorted by token length and cut into micro-batches (``batch_size`` requests,
at most ``max_batch_tokens`` padded tokens). Padding side is an option (``padding_side``, default
right for scoring); either side gets an attention mask and explicit position ids, so a padded row
scores like the same sequence alone. Cloze scoring shares each question's prefix: the contexts run
once, their KV cache is copied to one row per option, and only the options' own tokens run again.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from culturelens.backends.base import Backend, BackendError, logsumexp
from culturelens.backends.embedded import EMBEDDED_MODELS, embedded_model_path
from culturelens.backends.files import file_sha256
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format
from culturelens.schema import Message, Request, Response

# transformers 5.2x renamed the model's KV-cache argument and output `past_key_values` -> `cache`
# (the old names still work but print a deprecation warning on every run)
try:
    from transformers.utils import generic as _tf_generic

    _CACHE_ARG = "cache" if hasattr(_tf_generic, "_rename_kwargs_for_bc") else "past_key_values"
except ImportError:  # pragma: no cover - transformers missing: the import below fails clearly
    _CACHE_ARG = "past_key_values"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hub_reachable_or_fail(what: str, timeout: float = 3.0) -> None:
    """One quick connection to the hub before transformers would spend about a minute retrying it.

    Offline (``HF_HUB_OFFLINE=1``) or unreachable: a one-line error that says what to do."""
    import socket
    from urllib.parse import urlparse

    hint = "pass a local folder or .gguf path, or a model already in the local Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise BackendError(f"{what} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: {hint}")
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError as exc:
        raise BackendError(
            f"{what} is not in the local Hugging Face cache and the hub ({url.hostname}) cannot be reached "
            f"({exc.strerror or exc}): {hint}; set HF_HUB_OFFLINE=1 to skip the hub"
        ) from None


def _kv(res: Any) -> Any:
    """The KV cache of a model output, under whichever name this transformers uses."""
    return getattr(res, _CACHE_ARG)


try:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
except ImportError as _exc:  # re-raised by load_backend as a one-line hint
    raise ImportError(f"transformers and torch are needed for the hf backend ({_exc})") from _exc

_MARKER = "culturelens.json"


def _home() -> Path:
    return Path(os.environ.get("CULTURELENS_HOME", Path.home() / ".cache" / "culturelens"))


def dequantised_dir(sha256: str) -> Path:
    """Where the dequantised copy of the GGUF file with this hash lives."""
    return _home() / "hf-dequantised" / sha256


def local_dir_hash(path: Path) -> str:
    """Identity of a local model folder: the content of every file in it (weights, config, tokenizer).

    Content, not names and sizes: two fine-tunes of one model have the same config and weight files
    of the same size, and a cache keyed on those would serve one model's answers as the other's.
    Each file's hash is memoised on (path, size, mtime), so a large model hashes once."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.relative_to(path).parts):
        h.update(f"{f.relative_to(path).as_posix()}:{file_sha256(f)}\n".encode())
    return h.hexdigest()


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    if dtype in (None, "", "auto"):
        return torch.float32 if device == "cpu" else torch.bfloat16
    name = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "half": "float16"}.get(dtype, dtype)
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise BackendError(f"unknown dtype {dtype!r} (float32, bfloat16, float16)")
    return value


class _Quiet:
    """Silence transformers' progress bars while loading (the runner shows its own progress)."""

    def __enter__(self) -> None:
        self.was = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            transformers.utils.logging.enable_progress_bar()


def length_chunks(
    costs: Sequence[tuple[int, int]], batch_size: int, max_batch_tokens: int
) -> Iterator[list[int]]:
    """Indices sorted by length, cut so a chunk holds at most ``batch_size`` requests and its padded
    size (rows x longest) stays under ``max_batch_tokens``. ``costs[i]`` = (rows, tokens per row)."""
    order = sorted(range(len(costs)), key=lambda i: costs[i][1])
    chunk: list[int] = []
    rows = longest = 0
    for i in order:
        r, n = costs[i]
        if chunk and (len(chunk) >= batch_size or (rows + r) * max(longest, n) > max_batch_tokens):
            yield chunk
            chunk, rows, longest = [], 0, 0
        chunk.append(i)
        rows += r
        longest = max(longest, n)
    if chunk:
        yield chunk


@register_backend("hf", usage="hf:ID_OR_PATH[#file.gguf]", extra="hf")
class HFBackend(Backend):
    #: transformers' tokenizer and model (their annotations are too loose to check the calls against)
    tok: Any
    model: Any

    def __init__(
        self,
        spec: str = "embedded",
        dtype: str | None = None,
        device: str | None = None,
        revision: str | None = None,
        batch_size: int = 8,
        max_batch_tokens: int = 8192,
        padding_side: str = "right",
        cache_dequantised: bool = True,
        max_length: int | None = None,
        n_threads: int | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
        share_prefix: bool = True,
        min_shared_tokens: int = 8,
        **_: Any,
    ):
        if padding_side not in ("left", "right"):
            raise BackendError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
        if n_threads:
            torch.set_num_threads(int(n_threads))
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(
                f"device={device}: this torch ({torch.__version__}) has no CUDA device to use; on a machine "
                "with an NVIDIA GPU install a CUDA build of torch (`make install-gpu`), or leave device unset"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _resolve_dtype(dtype, self.device)
        self.batch_size = max(1, int(batch_size))
        self.max_batch_tokens = max(1, int(max_batch_tokens))
        self.padding_side = padding_side
        self.share_prefix = bool(share_prefix)
        self.min_shared_tokens = max(1, int(min_shared_tokens))
        self._prefix_memo: tuple[tuple[int, ...], Any] | None = None
        self.seed = seed
        self.revision = revision
        self.loaded_from = ""  # folder or file the weights were actually read from
        self.load_seconds = 0.0
        self._identity: dict[str, Any] = {}
        t0 = time.perf_counter()
        with _Quiet():
            self._load(spec or "embedded", revision, cache_dequantised, trust_remote_code)
        self.load_seconds = time.perf_counter() - t0
        self.model.eval()
        tok = self.tok
        self.chat_template_source = (
            "tokenizer.chat_template" if getattr(tok, "chat_template", None) else "plain"
        )
        self.eos_ids = self._eos_ids()
        self.pad_id = next(
            (t for t in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) if t is not None), 0
        )
        # does the tokenizer prepend BOS on its own? (the chat template may also write it as text)
        with_special = tok("x")["input_ids"]
        without = tok("x", add_special_tokens=False)["input_ids"]
        self._bos = (
            with_special[0]
            if len(with_special) > len(without) and with_special[0] == tok.bos_token_id
            else None
        )
        cfg = self.model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self.max_length = (
            max_length
            or getattr(text_cfg, "max_position_embeddings", None)
            or getattr(text_cfg, "n_positions", None)
        )
        self._keep2d = self._supports_positions_to_keep()
        self._keep_last = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._first_token_cache: dict[str, list[int]] = {}

    # --- loading -----------------------------------------------------------------------------------------
    def _load(self, spec: str, revision: str | None, cache: bool, trust: bool) -> None:
        source, _, gguf = spec.partition("#")
        if source in ("default",) or source in EMBEDDED_MODELS:
            gguf_path: Path | None = embedded_model_path("embedded" if source == "default" else source)
        elif gguf:
            local = Path(source).expanduser()
            if local.is_dir():
                gguf_path = local / gguf
            else:
                try:
                    from huggingface_hub import hf_hub_download

                    try:
                        gguf_path = Path(
                            hf_hub_download(source, gguf, revision=revision, local_files_only=True)
                        )
                    except Exception:  # noqa: BLE001 - not cached: go to the hub, if it can be reached
                        _hub_reachable_or_fail(f"{source}#{gguf}")
                        gguf_path = Path(hf_hub_download(source, gguf, revision=revision))
                except BackendError:
                    raise
                except Exception as exc:  # noqa: BLE001 - network, auth, missing file
                    raise BackendError(f"could not fetch {gguf} from {source}: {_first_line(exc)}") from exc
        elif source.endswith(".gguf"):
            gguf_path = Path(source).expanduser()
        else:
            gguf_path = None

        if gguf_path is not None:
            self._load_gguf(gguf_path, cache, trust)
            return

        local = Path(source).expanduser()
        kwargs: dict[str, Any] = {"trust_remote_code": trust}
        if not local.is_dir():
            kwargs["revision"] = revision
            try:  # a model already in the local hub cache loads without touching the network
                self._from_pretrained(source, local_files_only=True, **kwargs)
            except BackendError:
                _hub_reachable_or_fail(source)
                self._from_pretrained(source, **kwargs)
        else:
            self._from_pretrained(str(local), **kwargs)
        if local.is_dir():
            self.loaded_from = str(local.resolve())
            self._identity = {
                "backend": "hf",
                "model": local.resolve().name,
                "local_hash": local_dir_hash(local),
            }
        else:
            self.loaded_from = source
            self._identity = {
                "backend": "hf",
                "model": source,
                "revision": revision or "main",
                "commit": self._commit_hash(source, revision),
            }
        self._identity["dtype"] = str(self.dtype).removeprefix("torch.")

    def _load_gguf(self, path: Path, cache: bool, trust: bool) -> None:
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        sha = file_sha256(path)
        self._identity = {
            "backend": "hf",
            "model": path.name,
            "sha256": sha,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        target = dequantised_dir(sha)
        if cache and (target / _MARKER).exists():
            try:
                self._from_pretrained(str(target), trust_remote_code=trust)
                self.loaded_from = str(target)
                return
            except (OSError, ValueError) as exc:  # a damaged cache entry: rebuild it
                shutil.rmtree(target, ignore_errors=True)
                self._cache_error = str(exc)
        # dequantise in float32 so the cached copy serves every dtype
        self._from_pretrained(
            str(path.parent), gguf_file=path.name, trust_remote_code=trust, dtype=torch.float32
        )
        self.loaded_from = str(path)
        if cache:
            self._save_dequantised(target, path, sha)
        if self.dtype != torch.float32:
            self.model.to(self.dtype)

    def _from_pretrained(self, source: str, dtype: torch.dtype | None = None, **kwargs: Any) -> None:
        try:
            self.tok = AutoTokenizer.from_pretrained(source, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or self.dtype, **kwargs)
        except (OSError, ValueError, ImportError) as exc:
            what = f"{source}#{kwargs['gguf_file']}" if kwargs.get("gguf_file") else source
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"transformers could not load {what}: {first}") from exc
        self.model.to(self.device)

    def _save_dequantised(self, target: Path, gguf: Path, sha: str) -> None:
        """Write to a temporary folder and rename it, so a crash or a concurrent loader never sees half a copy."""
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        model = self.model
        try:
            # the weights are plain tensors now, but transformers refuses to save a "gguf-quantised" model
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tmp.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(tmp)
            self.tok.save_pretrained(tmp)
            (tmp / _MARKER).write_text(
                json.dumps({"gguf": gguf.name, "sha256": sha, "transformers": transformers.__version__})
            )
            os.replace(tmp, target)
        except OSError:
            pass  # another process won the race, or the disk is read-only: the cache is an optimisation
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _commit_hash(source: str, revision: str | None) -> str | None:
        try:
            from transformers.utils import cached_file

            cfg = cached_file(source, "config.json", revision=revision)
        except Exception:  # noqa: BLE001
            return None
        parent = Path(cfg).parent if cfg else None
        return parent.name if parent is not None and parent.parent.name == "snapshots" else None

    def _supports_positions_to_keep(self) -> bool:
        """True when the model's forward accepts per-row positions in ``logits_to_keep``."""
        try:
            src = inspect.getsource(type(self.model).forward)
        except (OSError, TypeError):
            return False
        return "slice_logits_to_keep" in src

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self.model, "generation_config", None)
        for value in (getattr(gen, "eos_token_id", None), self.tok.eos_token_id):
            for v in value if isinstance(value, list) else [value]:
                if v is not None and v not in ids:
                    ids.append(int(v))
        return ids

    # --- identity and formatting ---------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        if self.chat_template_source == "plain":
            return plain_format(messages, assistant_prefix)
        text = self.tok.apply_chat_template(
            [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=False
        )
        return text + assistant_prefix

    def format_closed(self, messages: Sequence[Message]) -> str | None:
        if self.chat_template_source == "plain":
            return None
        return str(
            self.tok.apply_chat_template(
                [m.model_dump() for m in messages], add_generation_prompt=False, tokenize=False
            )
        )

    def encode(self, text: str) -> list[int]:
        """Tokens of a formatted prompt: BOS once (the template may already have written it)."""
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        if self._bos is not None and (not ids or ids[0] != self._bos):
            ids.insert(0, self._bos)
        if not ids:  # an empty prompt still needs one position to predict from
            ids = [self.tok.bos_token_id if self.tok.bos_token_id is not None else self.pad_id]
        if self.max_length and len(ids) > self.max_length:
            raise BackendError(
                f"prompt of {len(ids)} tokens exceeds the model's context of {self.max_length}"
            )
        return ids

    def _first_tokens(self, target: str) -> list[int]:
        if target not in self._first_token_cache:
            ids: list[int] = []
            for form in (target, " " + target):
                toks = self.tok(form, add_special_tokens=False)["input_ids"]
                if toks and toks[0] not in ids:
                    ids.append(toks[0])
            self._first_token_cache[target] = ids
        return self._first_token_cache[target]

    # --- batching helpers ----------------------------------------------------------------------------
    def _chunks(self, costs: Sequence[tuple[int, int]]) -> Iterator[list[int]]:
        return length_chunks(costs, self.batch_size, self.max_batch_tokens)

    def _pad(self, seqs: Sequence[Sequence[int]], side: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Padded ids, attention mask, and each row's offset (where its first real token sits)."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        offsets = []
        for b, s in enumerate(seqs):
            off = width - len(s) if side == "left" else 0
            ids[b, off : off + len(s)] = torch.tensor(list(s), dtype=torch.long)
            mask[b, off : off + len(s)] = 1
            offsets.append(off)
        return ids.to(self.device), mask.to(self.device), offsets

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def _shared_len(self, seqs: Sequence[Sequence[int]]) -> int:
        """Length of the token prefix every row starts with, leaving each row at least one own token;
        0 when sharing is off, the batch has one row, or the prefix is too short to be worth a pass."""
        if not self.share_prefix or len(seqs) < 2:
            return 0
        first, n = seqs[0], min(len(s) for s in seqs) - 1
        for s in seqs[1:]:
            k = 0
            while k < n and s[k] == first[k]:
                k += 1
            n = k
        return n if n >= self.min_shared_tokens else 0

    def _prefix_cache(self, prefix: tuple[int, ...], rows: int) -> Any:
        """KV cache of ``prefix`` repeated for ``rows`` rows. The prefix is encoded once and kept while
        consecutive chunks share it (a benchmark's system prompt and instructions, a sweep's question)."""
        if self._prefix_memo is None or self._prefix_memo[0] != prefix:
            ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
            extra = {"logits_to_keep": 1} if self._keep_last else {}
            with torch.inference_mode():
                res = self.model(input_ids=ids, use_cache=True, **extra)
            self._prefix_memo = (prefix, _kv(res))
        cache = copy.deepcopy(self._prefix_memo[1])
        cache.batch_repeat_interleave(rows)
        return cache

    def _left_batch(
        self, seqs: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """Left-padded batch whose last column is every row's last token: (input ids, attention mask over
        prefix + ids, position ids, past key values). When the rows share a prefix, only their own tails
        are run, on top of the prefix's cache."""
        shared = self._shared_len(seqs)
        if not shared:
            ids, mask, _ = self._pad(seqs, "left")
            return ids, mask, self._positions(mask), None
        past = self._prefix_cache(tuple(seqs[0][:shared]), len(seqs))
        ids, tail_mask, _ = self._pad([s[shared:] for s in seqs], "left")
        head = torch.ones((len(seqs), shared), dtype=tail_mask.dtype, device=tail_mask.device)
        mask = torch.cat([head, tail_mask], dim=1)
        return ids, mask, self._positions(mask)[:, shared:], past

    def _logprobs_at(self, seqs: Sequence[Sequence[int]], positions: Sequence[int]) -> torch.Tensor:
        """One forward pass over ``seqs``; log-softmax of the next-token distribution at one position
        per row (an index into that row's own tokens). Returns (rows, vocab) float32 on the CPU."""
        if all(p == len(s) - 1 for s, p in zip(seqs, positions, strict=True)) and self._shared_len(seqs):
            ids, mask, pos, past = self._left_batch(seqs)
            extra = {"logits_to_keep": 1} if self._keep_last else {}
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    **{_CACHE_ARG: past},
                    use_cache=True,
                    **extra,
                ).logits
            return torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
        ids, mask, offsets = self._pad(seqs, self.padding_side)
        cols = torch.tensor([off + p for off, p in zip(offsets, positions, strict=True)], device=self.device)
        kwargs: dict[str, Any] = {
            "attention_mask": mask,
            "position_ids": self._positions(mask),
            "use_cache": False,
        }
        if self._keep2d:
            kwargs["logits_to_keep"] = cols[:, None]
        with torch.inference_mode():
            logits = self.model(input_ids=ids, **kwargs).logits
        rows = logits[:, 0] if self._keep2d else logits[torch.arange(len(seqs), device=self.device), cols]
        return torch.log_softmax(rows.float(), dim=-1).cpu()

    # --- the three request kinds ---------------------------------------------------------------------
    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        encs = [self.encode(r.text) for r in batch]
        out: list[Response | None] = [None] * len(batch)
        for chunk in self._chunks([(1, len(e)) for e in encs]):
            lps = self._logprobs_at([encs[i] for i in chunk], [len(encs[i]) - 1 for i in chunk])
            for row, i in zip(lps, chunk, strict=True):
                vals = [
                    logsumexp([float(row[t]) for t in self._first_tokens(tgt)]) for tgt in batch[i].targets
                ]
                top = int(torch.argmax(row))
                out[i] = Response(
                    logprobs=vals,
                    meta={"top_token": self.tok.decode([top]), "top_logprob": float(row[top])},
                )
        return [r for r in out if r is not None]

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        ctxs = [self.encode(r.text) for r in batch]
        conts = [[list(self.tok(t, add_special_tokens=False)["input_ids"]) for t in r.targets] for r in batch]
        for ctx, cs, r in zip(ctxs, conts, batch, strict=True):
            longest = max((len(c) for c in cs), default=0)
            if self.max_length and len(ctx) + longest > self.max_length:
                raise BackendError(
                    f"prompt plus continuation of {len(ctx) + longest} tokens exceeds the model's context "
                    f"of {self.max_length} ({r.text[:40]!r}...)"
                )
        out: list[Response | None] = [None] * len(batch)
        costs = [
            (max(1, len(cs)), len(ctx) + max((len(c) for c in cs), default=0))
            for ctx, cs in zip(ctxs, conts, strict=True)
        ]
        for chunk in self._chunks(costs):
            for i, resp in zip(
                chunk, self._score_shared([ctxs[i] for i in chunk], [conts[i] for i in chunk]), strict=True
            ):
                out[i] = resp
        return [r for r in out if r is not None]

    def _score_shared(self, ctxs: list[list[int]], conts: list[list[list[int]]]) -> list[Response]:
        """Contexts once (left-padded, KV cached), then every option's own tokens against a copy of its
        context's cache: the option's first token is scored from the context's last position."""
        ids, mask, pos, past = self._left_batch(ctxs)
        with torch.inference_mode():
            extra = {"logits_to_keep": 1} if self._keep_last else {}
            res = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                **{_CACHE_ARG: past},
                use_cache=True,
                **extra,
            )
            first = torch.log_softmax(res.logits[:, -1].float(), dim=-1).cpu()
            cache = _kv(res)
            rows = [(r, j) for r, cs in enumerate(conts) for j, c in enumerate(cs) if len(c) > 1]
            tail: dict[tuple[int, int], torch.Tensor] = {}
            if rows:
                sel = torch.tensor([r for r, _ in rows], device=self.device)
                cache.batch_select_indices(sel)
                seqs = [conts[r][j][:-1] for r, j in rows]
                cids, cmask, _ = self._pad(seqs, "right")
                full_mask = torch.cat([mask[sel], cmask], dim=1)
                ctx_len = mask.sum(-1)[sel]
                pos = ctx_len[:, None] + torch.arange(cids.shape[1], device=self.device)[None, :]
                logits = self.model(
                    input_ids=cids,
                    attention_mask=full_mask,
                    position_ids=pos,
                    **{_CACHE_ARG: cache},
                    use_cache=True,
                ).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                for b, (r, j) in enumerate(rows):
                    nxt = torch.tensor(conts[r][j][1:], device=self.device)
                    tail[(r, j)] = logp[b, torch.arange(len(nxt), device=self.device), nxt].sum().cpu()
        out = []
        for r, cs in enumerate(conts):
            lps, ns = [], []
            for j, c in enumerate(cs):
                if not c:
                    lps.append(0.0)
                    ns.append(0)
                    continue
                total = float(first[r, c[0]]) + (float(tail[(r, j)]) if (r, j) in tail else 0.0)
                lps.append(total)
                ns.append(len(c))
            out.append(Response(logprobs=lps, n_tokens=ns))
        return out

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        encs = [self.encode(r.text) for r in batch]
        out: list[Response | None] = [None] * len(batch)
        groups: dict[float, list[int]] = {}
        for i, r in enumerate(batch):
            groups.setdefault(r.temperature, []).append(i)
        for temp, idx in groups.items():
            costs = [(1, len(encs[i]) + batch[i].max_tokens) for i in idx]
            for chunk in self._chunks(costs):
                members = [idx[k] for k in chunk]
                for i, resp in zip(
                    members,
                    self._generate([encs[i] for i in members], [batch[i].max_tokens for i in members], temp),
                    strict=True,
                ):
                    out[i] = resp
        return [r for r in out if r is not None]

    def _generate(self, encs: list[list[int]], max_tokens: list[int], temperature: float) -> list[Response]:
        ids, mask, _ = self._pad(encs, "left")
        kwargs: dict[str, Any] = {"max_new_tokens": max(max_tokens), "pad_token_id": self.pad_id}
        if self.eos_ids:
            kwargs["eos_token_id"] = self.eos_ids
        if temperature > 0:
            torch.manual_seed(self.seed)
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        with torch.inference_mode():
            gen = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        out = []
        for row, limit in zip(gen[:, ids.shape[1] :].tolist(), max_tokens, strict=True):
            toks = []
            for t in row[:limit]:
                if t in self.eos_ids:
                    break
                toks.append(t)
            out.append(Response(text=self.tok.decode(toks, skip_special_tokens=True), n_tokens=[len(toks)]))
        return out

    def close(self) -> None:
        self.model = None
        self._prefix_memo = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
