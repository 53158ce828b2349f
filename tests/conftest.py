"""Shared fixtures: a fake encoder that records its calls, and the real default model (slow)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import pytest

from index.encoder import Encoder, Kind
from qa.abstain import FEATURES, AbstainModel, GroupModel


class FakeEncoder(Encoder):
    """Deterministic bag-of-character-trigram vectors: similar texts get similar vectors.

    Records every text it is asked to embed, so tests can count what an update re-embeds.
    """

    model_id = "fake-trigram-64"
    dim = 64

    def __init__(self) -> None:
        self.calls: list[tuple[Kind, list[str]]] = []

    @property
    def embedded_documents(self) -> list[str]:
        return [t for kind, texts in self.calls if kind == "document" for t in texts]

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        self.calls.append((kind, list(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                h = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                out[row, int.from_bytes(h, "little") % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dim)
        return out


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> str:
    """Where the real model is built: $ISNAD_CACHE (shared across runs) or a temp folder."""
    return os.environ.get("ISNAD_CACHE") or str(tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(scope="session")
def real_encoder(model_cache):
    from index.encoder import configure_threads, load_encoder

    configure_threads()
    return load_encoder(cache_dir=model_cache)


@pytest.fixture(autouse=True)
def _own_data_folder(tmp_path_factory, monkeypatch):
    """isnad's per-user data folder (conversations, uploads, the default index) is a temp folder
    in every test: nothing is read from or written to the user's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))


def fixed_model(threshold: float, model_id: str = "fixed") -> AbstainModel:
    """An abstention model that always answers (0.0) or never does (1.1): the calibrated one
    is fitted to the real model's scores, not to the fake encoder's."""
    group = GroupModel(
        (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0, threshold
    )
    return AbstainModel({"same": group, "cross": group}, model_id)
