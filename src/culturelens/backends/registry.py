"""The backend registry: which ``--model PREFIX:SPEC`` prefixes exist, and loading a model by its spec.

A backend registers itself where it is defined::

    @register_backend("mine", "alias", usage="mine:MODEL_PATH", extra="mine")
    class MyBackend(Backend): ...

A new built-in backend is that one module in ``culturelens.backends``. The registry finds the
built-ins by reading their source for ``@register_backend(...)`` (whose arguments must therefore be
literals), without importing them: a backend module may import torch or an optional dependency, and
is imported only when a spec uses its prefix. Another package adds backends through the entry-point
group ``culturelens.backends`` (see :mod:`culturelens.plugins`): each entry point, a module using
``@register_backend`` or a :class:`Backend` class (registered under the entry point's name), is
imported when the registry is first used. The ``--model`` help is :func:`model_help`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from culturelens.backends.base import Backend
from culturelens.errors import BackendError
from culturelens.plugins import BACKENDS_GROUP, load_entry_points

#: what ``--model default`` (or ``embedded``, or nothing) means
DEFAULT_SPEC = "llamacpp:embedded"

_B = type[Backend]


@dataclass
class BackendInfo:
    """One registered backend: its prefixes, where it is defined, and how to ask for it."""

    prefix: str
    module: str
    aliases: tuple[str, ...] = ()
    usage: str = ""  # the spec syntax shown in ``--model`` help and errors ("" : PREFIX:SPEC)
    extra: str | None = None  # pip extra with its optional dependencies: culturelens[EXTRA]
    hidden: bool = False  # left out of the help (testing backends)
    builtin: bool = True
    cls: _B | None = None

    @property
    def spec_syntax(self) -> str:
        return self.usage or f"{self.prefix}:SPEC"

    def load(self) -> _B:
        """The backend class, importing its module the first time."""
        if self.cls is None:
            try:
                importlib.import_module(self.module)
            except ImportError as exc:  # missing optional dependency
                if self.extra:
                    raise BackendError(
                        f"backend {self.prefix!r} needs an optional dependency: "
                        f"pip install 'culturelens[{self.extra}]' ({exc})"
                    ) from exc
                raise BackendError(f"backend {self.prefix!r} cannot be imported ({exc})") from exc
            if self.cls is None:
                raise BackendError(f"module {self.module} does not register a backend {self.prefix!r}")
        return self.cls


_BACKENDS: dict[str, BackendInfo] = {}  # canonical prefix -> info
_ALIASES: dict[str, str] = {}  # every prefix (canonical or alias) -> canonical prefix
_discovered = False


def _add(info: BackendInfo) -> BackendInfo:
    """Record ``info``; the same backend seen again (its source read, then its module imported) is
    updated in place, so an entry handed out before the import sees the class."""
    for p in (info.prefix, *info.aliases):
        owner = _ALIASES.get(p)
        if owner is not None and _BACKENDS[owner].module != info.module:
            raise ValueError(f"backend prefix {p!r} is already registered by {_BACKENDS[owner].module}")
    known = _BACKENDS.get(info.prefix)
    if known is not None:
        info.builtin = known.builtin
        info.cls = info.cls or known.cls
        vars(known).update(vars(info))
        info = known
    _BACKENDS[info.prefix] = info
    for p in (info.prefix, *info.aliases):
        _ALIASES[p] = info.prefix
    return info


def register_backend(
    prefix: str, *aliases: str, usage: str = "", extra: str | None = None, hidden: bool = False
) -> Callable[[_B], _B]:
    """Class decorator: ``--model PREFIX:SPEC`` (or ``ALIAS:SPEC``) loads this backend as ``cls(SPEC, **options)``.

    ``usage`` is the spec syntax for the help (``"hf:ID_OR_PATH[#file.gguf]"``); ``extra`` names the
    pip extra that installs its optional dependencies; ``hidden`` leaves it out of the help.
    """

    def deco(cls: _B) -> _B:
        cls.name = prefix
        module = cls.__module__
        builtin = module.startswith(f"{__package__}.")
        _add(BackendInfo(prefix, module, tuple(aliases), usage, extra, hidden, builtin, cls))
        return cls

    return deco


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _declared(source: str, module: str) -> list[BackendInfo] | None:
    """The ``@register_backend(...)`` classes of a module's source; None when they cannot be read statically."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for dec in node.decorator_list:
            if isinstance(dec, ast.Call) and _decorator_name(dec.func) == "register_backend":
                try:
                    prefix, *aliases = (ast.literal_eval(a) for a in dec.args)
                    kw = {k.arg: ast.literal_eval(k.value) for k in dec.keywords if k.arg}
                    found.append(BackendInfo(prefix, module, tuple(aliases), **kw))
                except (ValueError, TypeError, SyntaxError):
                    return None  # not literals: the module has to be imported to know
    return found


def _discover_builtins() -> None:
    import culturelens.backends as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        name = f"{pkg.__name__}.{mod.name}"
        spec = importlib.util.find_spec(name)
        declared = None
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            try:
                declared = _declared(Path(spec.origin).read_text(encoding="utf-8"), name)
            except (OSError, SyntaxError, UnicodeDecodeError):
                declared = None
        if declared is None:  # no readable source: import it (a failure leaves it unregistered)
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
            continue
        for info in declared:
            if info.prefix not in _BACKENDS:
                _add(info)


def _discover_entry_points() -> None:
    for ep, obj in load_entry_points(BACKENDS_GROUP):
        if isinstance(obj, type) and issubclass(obj, Backend):
            if not any(i.cls is obj for i in _BACKENDS.values()):  # not decorated: use the entry point's name
                try:
                    register_backend(ep.name)(obj)
                except ValueError as exc:
                    sys.stderr.write(
                        f"warning: entry point {ep.name} = {ep.value} ({BACKENDS_GROUP}): {exc}\n"
                    )
        elif not isinstance(obj, ModuleType):
            sys.stderr.write(
                f"warning: entry point {ep.name} = {ep.value} ({BACKENDS_GROUP}) is neither a module "
                "nor a Backend class\n"
            )


def discover() -> None:
    """Find the built-in backends (from their source) and the entry-point backends (importing them), once."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    _discover_builtins()
    _discover_entry_points()


def backends() -> list[BackendInfo]:
    """Registered backends: the default's first, then built-ins, then other packages' (each by prefix)."""
    discover()
    default = DEFAULT_SPEC.partition(":")[0]
    return sorted(_BACKENDS.values(), key=lambda b: (b.prefix != default, not b.builtin, b.prefix))


def backend_info(prefix: str) -> BackendInfo | None:
    """The backend a prefix or alias names (None: no such backend)."""
    discover()
    canonical = _ALIASES.get(prefix)
    return _BACKENDS[canonical] if canonical else None


def model_help() -> str:
    """``--model`` help: every listed backend's spec syntax, then ``default``."""
    return " | ".join([b.spec_syntax for b in backends() if not b.hidden] + ["default"])


#: the ecosystem's ``provider/model`` names (inspect_ai, lighteval, LiteLLM) -> (backend prefix, default
#: base URL, environment variable that overrides it); vLLM and Ollama serve an OpenAI-compatible API
PROVIDERS: dict[str, tuple[str, str | None, str | None]] = {
    "openai": ("openai", None, None),  # base URL: $OPENAI_BASE_URL or the OpenAI API, as for openai:
    "hf": ("hf", None, None),
    "vllm": ("openai", "http://localhost:8000/v1", "VLLM_BASE_URL"),
    "ollama": ("openai", "http://localhost:11434/v1", "OLLAMA_BASE_URL"),
    "llama-cpp": ("llamacpp", None, None),
}


def normalize_spec(spec: str) -> str:
    """A model string as this registry's ``PREFIX:SPEC``.

    Today's forms pass through (``openai:gpt-4o-mini``, ``hf:org/model``, ``llamacpp:PATH``); ``default``
    and ``embedded`` are :data:`DEFAULT_SPEC`; ``provider/model`` (:data:`PROVIDERS`, or any registered
    prefix such as ``llamacpp/PATH``) becomes ``prefix:model``: ``openai/gpt-4o-mini`` ->
    ``openai:gpt-4o-mini``, ``hf/org/model`` -> ``hf:org/model``, ``llama-cpp/PATH`` -> ``llamacpp:PATH``,
    ``vllm/MODEL`` -> ``openai:MODEL@http://localhost:8000/v1`` and ``ollama/MODEL`` ->
    ``openai:MODEL@http://localhost:11434/v1`` (``$VLLM_BASE_URL`` / ``$OLLAMA_BASE_URL`` or
    ``MODEL@BASE_URL`` give another server). A string whose part before the first ``/`` holds a ``:``
    is in today's form (``hf:org/model``, ``llamacpp:/models/x.gguf``).
    """
    import os

    if spec in ("", "default", "embedded"):
        return DEFAULT_SPEC
    head, slash, rest = spec.partition("/")
    if not slash or ":" in head:
        return spec
    if head in PROVIDERS:
        prefix, url, env = PROVIDERS[head]
    elif backend_info(head) is not None:
        prefix, url, env = head, None, None
    else:
        return spec  # not a provider: reported as an unknown model spec
    if not rest.strip():
        raise BackendError(f"model {spec!r} names no model: use {head}/MODEL")
    if url is not None and not re.search(r"@[A-Za-z][A-Za-z0-9+.-]*://", rest):
        rest = f"{rest}@{os.environ.get(env or '') or url}"
    return f"{prefix}:{rest}"


def load_backend(spec: str, lazy: bool = False, **options: Any) -> Backend:
    """``PREFIX:SPEC`` (``llamacpp:PATH`` | ``hf:ID_OR_PATH[#gguf_file]`` | ``openai:MODEL@BASE_URL``...),
    ``provider/model`` (``openai/gpt-4o-mini``, ``vllm/MODEL``...: :func:`normalize_spec`) or ``default``.

    With ``lazy=True`` a backend that saved a card on an earlier load is returned as a
    :class:`~culturelens.backends.cards.LazyBackend`, which loads the weights only if something is
    not in the cache.
    """
    from culturelens.backends.cards import LazyBackend, load_card

    spec = normalize_spec(spec)
    prefix, sep, rest = spec.partition(":")
    info = backend_info(prefix) if sep else None
    if info is None:
        listed = [b.spec_syntax for b in backends() if not b.hidden]
        providers = ", ".join(f"{p}/MODEL" for p in PROVIDERS)
        raise BackendError(f"unknown model spec {spec!r}: use {', '.join(listed)}, {providers} or default")
    cls = info.load()
    check_options(cls, spec, options)
    verdict = getattr(cls, "native_verdict", None)  # a native build may not run on this machine
    if verdict is not None:
        fallback = verdict(rest, options)
        if fallback is not None:
            return load_backend(fallback, lazy=lazy)
    if lazy:
        key = cls.card_key(rest, **options)
        card = load_card(key) if key else None
        if card is not None:
            return LazyBackend(spec, card, options)
    factory: Callable[..., Backend] = cls  # implementations take (spec, **options)
    return factory(rest, **options)


def check_options(cls: _B, spec: str, options: dict[str, Any]) -> None:
    """Unknown ``--model-opt`` keys are an error: the backend's explicit keyword parameters are
    its options (a ``**kwargs`` catch-all accepts nothing)."""
    import difflib
    import inspect

    from culturelens.redact import redact

    params = inspect.signature(cls.__init__).parameters
    known = [
        n
        for n, p in params.items()
        if n not in ("self", "spec") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise BackendError(
                f"backend {cls.name!r} ({redact(spec)}) has no option {key!r}{hint}; options: {', '.join(known) or 'none'}"
            )
