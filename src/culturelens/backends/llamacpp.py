"""llama.cpp backend: any GGUF file through llama-cpp-python; the embedded default model.

Speed comes from the KV cache: consecutive requests reuse their longest common token prefix
(requests are sorted by text before batching), and cloze scoring evaluates the question once and
then only each option's own tokens, asking for logits only at the positions that are scored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from culturelens.backends.base import Backend, BackendError, NativeCrashError, logsumexp, warn
from culturelens.backends.cards import save_card
from culturelens.backends.embedded import EMBEDDED_MODELS, embedded_model_path
from culturelens.backends.files import file_sha256
from culturelens.backends.registry import register_backend
from culturelens.backends.templates import plain_format, render_chat_template
from culturelens.schema import Message, Request, Response


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max()
    return logits - (m + np.log(np.exp(logits - m).sum()))


def open_llama(path: Path, n_ctx: int, n_batch: int, n_threads: int, use_extra_bufts: bool = True) -> Any:
    """``llama_cpp.Llama`` on ``path``; ``use_extra_bufts=False`` turns off llama.cpp's extra buffer
    types (weight repacking for AMX and similar kernels), which ``Llama()`` does not expose."""
    import llama_cpp
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params_without_extra_bufts() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    if not use_extra_bufts:
        lib.llama_model_default_params = params_without_extra_bufts
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            logits_all=False,
            verbose=False,
        )
    finally:
        lib.llama_model_default_params = original


_MIN_TAIL = 2
# versions the evaluation code (identity and saved card): responses from an older scorer are not reused
_SCORER = 2


@register_backend("llamacpp", "gguf", usage="llamacpp:PATH", extra="llamacpp")
class LlamaCppBackend(Backend):
    def __init__(
        self,
        spec: str = "embedded",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        use_extra_bufts: bool | None = None,
        probe: bool = True,
    ):
        """``use_extra_bufts``: None lets the native probe decide (see :mod:`culturelens.backends.probe`);
        ``probe=False`` skips the probe (the probe's own child process)."""
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendError(
                "llama-cpp-python is not installed: pip install 'culturelens[llamacpp]'"
            ) from exc
        self._lib = llama_cpp
        path = self._resolve(spec)
        if not path.exists():
            raise BackendError(f"model file not found: {path}")
        self.path = path
        self.probe_detail = "not probed"
        if use_extra_bufts is None:
            use_extra_bufts = True
            if probe:
                from culturelens.backends.probe import FIX, check

                verdict = check(path)
                self.probe_detail = verdict.detail
                if not verdict.ok:
                    raise NativeCrashError(
                        f"llama.cpp cannot run {path.name} on this CPU: {verdict.detail}; fix: {FIX}"
                    )
                if not verdict.use_extra_bufts:
                    use_extra_bufts = False
                    warn(f"llama.cpp on this CPU: {verdict.detail} (slower); fix: {FIX}")
        self.use_extra_bufts = use_extra_bufts
        try:
            self.llm = open_llama(
                path, n_ctx, n_batch, n_threads or max(1, (os.cpu_count() or 2)), use_extra_bufts
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        self.n_ctx = n_ctx
        meta = self.llm.metadata
        self._template = meta.get("tokenizer.chat_template")
        self.chat_template_source = "gguf:tokenizer.chat_template" if self._template else "plain"
        vocab = self.llm._model.vocab if hasattr(self.llm._model, "vocab") else None  # noqa: F841
        self._bos = self._piece(self.llm.token_bos())
        self._eos = self._piece(self.llm.token_eos())
        self._sha = file_sha256(path)
        self._first_token_cache: dict[str, list[int]] = {}
        key = self.card_key(spec, n_ctx=n_ctx)
        if key:
            card = {
                "identity": self.identity(),
                "chat_template_source": self.chat_template_source,
                "template": self._template,
                "bos": self._bos,
                "eos": self._eos,
            }
            save_card(key, card)

    @classmethod
    def native_verdict(cls, spec: str, options: dict[str, Any]) -> str | None:
        """Probe llama.cpp on this model once per machine (cached). None: use llama.cpp. A crash:
        for a bundled model, the spec of the transformers backend on the same file (with a warning);
        otherwise a :class:`NativeCrashError` with the fix."""
        from culturelens.backends.probe import FIX, check

        if options.get("use_extra_bufts") is not None or options.get("probe") is False:
            return None
        try:
            path = cls._resolve(spec)
        except BackendError:
            return None
        if not path.exists():
            return None
        verdict = check(path)
        if verdict.ok:
            return None
        name = spec if spec in EMBEDDED_MODELS else None
        if spec in ("", "default"):
            name = "embedded"
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401

            has_hf = True
        except ImportError:
            has_hf = False
        if name in EMBEDDED_MODELS and has_hf:
            dropped = f" (llama.cpp options {', '.join(options)} do not apply)" if options else ""
            warn(
                f"llama.cpp crashed in a test decode on this CPU ({verdict.detail}); running the same "
                f"file through transformers (hf:{name}) instead{dropped}; fix: {FIX}"
            )
            return f"hf:{name}"
        raise NativeCrashError(f"llama.cpp cannot run {path.name} on this CPU: {verdict.detail}; fix: {FIX}")

    @classmethod
    def _resolve(cls, spec: str) -> Path:
        if spec in ("", "default"):
            spec = "embedded"
        return embedded_model_path(spec) if spec in EMBEDDED_MODELS else Path(spec).expanduser()

    @classmethod
    def card_key(cls, spec: str, **options: Any) -> str | None:
        try:
            p = cls._resolve(spec).resolve()
            st = p.stat()
        except (OSError, BackendError):
            return None
        return f"llamacpp|{_SCORER}|{p}|{st.st_size}|{st.st_mtime_ns}"

    # --- identity and formatting ----------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {"backend": "llamacpp", "model": self.path.name, "sha256": self._sha, "scorer": _SCORER}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["native"] = {"use_extra_bufts": self.use_extra_bufts, "probe": self.probe_detail}
        with contextlib.suppress(Exception):
            info["native"]["system_info"] = self._lib.llama_print_system_info().decode().strip()
        return info

    def _piece(self, token: int) -> str:
        try:
            return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")
        except TypeError:
            return self.llm.detokenize([token]).decode("utf-8", errors="ignore")

    def format(self, messages: Sequence[Message], assistant_prefix: str = "") -> str:
        if not self._template:
            return plain_format(messages, assistant_prefix)
        return render_chat_template(self._template, messages, self._bos, self._eos) + assistant_prefix

    def format_closed(self, messages: Sequence[Message]) -> str | None:
        if not self._template:
            return None
        return render_chat_template(
            self._template, messages, self._bos, self._eos, add_generation_prompt=False
        )

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        toks = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=add_bos)
        bos = self.llm.token_bos()
        if add_bos and len(toks) > 1 and toks[0] == bos and toks[1] == bos:
            toks = toks[1:]  # template already wrote the BOS text
        return toks

    # --- low-level evaluation with prefix reuse ------------------------------------------------------
    def _decode(self, tokens: Sequence[int], want_logits: Sequence[int]) -> dict[int, np.ndarray]:
        """Append ``tokens`` after the current KV state; return logits at absolute positions asked."""
        llm = self.llm
        if llm.n_tokens + len(tokens) > self.n_ctx:
            raise BackendError(f"prompt of {llm.n_tokens + len(tokens)} tokens exceeds n_ctx={self.n_ctx}")
        wanted = set(want_logits)
        out: dict[int, np.ndarray] = {}
        batch = llm._batch.batch
        n_vocab = llm.n_vocab()
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start : start + llm.n_batch]
            n_past = llm.n_tokens
            batch.n_tokens = len(chunk)
            for i, tok in enumerate(chunk):
                batch.token[i] = tok
                batch.pos[i] = n_past + i
                batch.seq_id[i][0] = 0
                batch.n_seq_id[i] = 1
                batch.logits[i] = (n_past + i) in wanted
            llm._ctx.decode(llm._batch)
            for i in range(len(chunk)):
                if (n_past + i) in wanted:
                    ptr = self._lib.llama_get_logits_ith(llm._ctx.ctx, i)
                    out[n_past + i] = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()
            llm.input_ids[n_past : n_past + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
        return out

    def _reuse_prefix(self, tokens: Sequence[int]) -> int:
        """Keep the longest common prefix with the KV cache, re-evaluating at least ``_MIN_TAIL`` tokens.

        llama.cpp's CPU kernels take another code path for a one-token batch, and its logits differ
        from the same position evaluated inside a longer batch (up to 0.4 nats on SmolLM2 Q4_1).
        Never decoding a lone last token keeps every score independent of what the cache held
        before, so a resumed or reordered run gives exactly the numbers of a fresh one.
        """
        llm = self.llm
        cur = llm.input_ids[: llm.n_tokens]
        n = min(len(cur), len(tokens) - _MIN_TAIL)
        common = 0
        if n > 0:
            eq = cur[:n] == np.asarray(tokens[:n], dtype=cur.dtype)
            common = int(n if eq.all() else np.argmin(eq))
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        llm.n_tokens = common
        return common

    def _last_logits(self, tokens: Sequence[int]) -> np.ndarray:
        common = self._reuse_prefix(tokens)
        last = len(tokens) - 1
        return self._decode(tokens[common:], [last])[last]

    def _first_tokens(self, target: str) -> list[int]:
        if target not in self._first_token_cache:
            ids = []
            for form in (target, " " + target):
                toks = self.tokenize(form, add_bos=False)
                if toks and toks[0] not in ids:
                    ids.append(toks[0])
            self._first_token_cache[target] = ids
        return self._first_token_cache[target]

    # --- the three request kinds ---------------------------------------------------------------------
    def label_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        for req in batch:
            logp = _log_softmax(self._last_logits(self.tokenize(req.text)))
            lps = [logsumexp([float(logp[t]) for t in self._first_tokens(tgt)]) for tgt in req.targets]
            top = int(np.argmax(logp))
            out.append(
                Response(logprobs=lps, meta={"top_token": self._piece(top), "top_logprob": float(logp[top])})
            )
        return out

    def continuation_logprobs(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        for req in batch:
            ctx = self.tokenize(req.text)
            ctx_logits = _log_softmax(self._last_logits(ctx))
            lps, ns = [], []
            for cont in req.targets:
                # special tokens parsed: a closed turn ends with the template's end-of-turn token
                ctoks = self.llm.tokenize(cont.encode("utf-8"), add_bos=False, special=True)
                if not ctoks:
                    lps.append(0.0)
                    ns.append(0)
                    continue
                total = float(ctx_logits[ctoks[0]])
                if len(ctoks) > 1:
                    # drop everything after the shared context (less its last token, so the batch is
                    # never a lone token: see _reuse_prefix), then score the option's own tokens
                    keep = len(ctx) - 1
                    self.llm._ctx.kv_cache_seq_rm(-1, keep, -1)
                    self.llm.n_tokens = keep
                    positions = list(range(len(ctx), len(ctx) + len(ctoks) - 1))
                    logits = self._decode([ctx[-1], *ctoks[:-1]], positions)
                    for j, pos in enumerate(positions):
                        total += float(_log_softmax(logits[pos])[ctoks[j + 1]])
                lps.append(total)
                ns.append(len(ctoks))
            out.append(Response(logprobs=lps, n_tokens=ns))
        return out

    def generate(self, batch: Sequence[Request]) -> list[Response]:
        out = []
        eos = self.llm.token_eos()
        for req in batch:
            toks = self.tokenize(req.text)
            logits = self._last_logits(toks)
            gen: list[int] = []
            for _ in range(req.max_tokens):
                nxt = int(np.argmax(logits))
                if (
                    nxt == eos or self.llm._model.token_is_eog(nxt)
                    if hasattr(self.llm._model, "token_is_eog")
                    else nxt == eos
                ):
                    break
                gen.append(nxt)
                pos = self.llm.n_tokens
                if pos + 1 > self.n_ctx:
                    break
                logits = self._decode([nxt], [pos])[pos]
            text = self.llm.detokenize(gen).decode("utf-8", errors="replace")
            out.append(Response(text=text, n_tokens=[len(gen)]))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.llm.close()
