"""A tiny random-weight Llama written as a GGUF file, with the embedded model's SmolLM2 tokenizer.

``write_tiny_gguf(path)`` copies every ``tokenizer.*`` key of the embedded GGUF
(``harness.models.loading.embedded_gguf_path()``: vocab, merges, token types, special ids, chat template) into a
new file whose ``llama.*`` hyperparameters describe a 2-layer model (d_model 64, 4 query heads sharing
2 key/value heads, MLP 128, tied embeddings as in SmolLM2) and whose tensors are random F32 arrays
(seeded: the same file, byte for byte, on every call). transformers' GGUF loader reads it with
``AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)``, so it takes the suite's ``.gguf``
path (``resolve_model`` -> kind ``gguf`` -> a dequantized copy in the claims cache).

Tensor layout follows llama.cpp: each 2-D weight is stored as the torch ``[out, in]`` matrix, and the
q/k projections carry llama.cpp's rotary permutation (the loader undoes it); with random weights the
permutation changes nothing measurable, but the shapes must match ``[n_heads * head_dim, d_model]`` and
``[n_kv_heads * head_dim, d_model]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_LAYERS, D_MODEL, N_HEADS, N_KV_HEADS, D_MLP = 2, 64, 4, 2, 128
CONTEXT = 256
SEED = 0


def _copy_tokenizer(reader, writer) -> int:
    """Copy the ``tokenizer.*`` keys; returns the vocabulary size."""
    import gguf

    vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            values = field.contents()
            writer.add_key_value(key, values, kind, sub_type=field.types[-1])
            if key == "tokenizer.ggml.tokens":
                vocab = len(values)
        else:
            writer.add_key_value(key, field.contents(), kind)
    if not vocab:
        raise ValueError("the source GGUF has no tokenizer.ggml.tokens")
    return vocab


def write_tiny_gguf(path: Path, source: Path | None = None) -> Path:
    """Write the tiny Llama to ``path`` (a ``.gguf`` file); ``source`` defaults to the embedded GGUF."""
    import gguf

    from harness.models.loading import embedded_gguf_path

    reader = gguf.GGUFReader(source or embedded_gguf_path())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(path.stem)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(D_MODEL)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(D_MLP)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_dimension_count(D_MODEL // N_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = _copy_tokenizer(reader, writer)
    writer.add_vocab_size(vocab)

    rng = np.random.default_rng(SEED)
    head_dim = D_MODEL // N_HEADS

    def matrix(rows: int, cols: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def gain() -> np.ndarray:  # RMSNorm gains around 1, so folding them is not a no-op
        return (1.0 + 0.2 * rng.standard_normal(D_MODEL)).astype(np.float32)

    writer.add_tensor("token_embd.weight", matrix(vocab, D_MODEL))
    for layer in range(N_LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", gain())
        writer.add_tensor(f"{block}.attn_q.weight", matrix(N_HEADS * head_dim, D_MODEL))
        writer.add_tensor(f"{block}.attn_k.weight", matrix(N_KV_HEADS * head_dim, D_MODEL))
        writer.add_tensor(f"{block}.attn_v.weight", matrix(N_KV_HEADS * head_dim, D_MODEL))
        writer.add_tensor(f"{block}.attn_output.weight", matrix(D_MODEL, N_HEADS * head_dim))
        writer.add_tensor(f"{block}.ffn_norm.weight", gain())
        writer.add_tensor(f"{block}.ffn_gate.weight", matrix(D_MLP, D_MODEL))
        writer.add_tensor(f"{block}.ffn_up.weight", matrix(D_MLP, D_MODEL))
        writer.add_tensor(f"{block}.ffn_down.weight", matrix(D_MODEL, D_MLP))
    writer.add_tensor("output_norm.weight", gain())

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":  # python tests/tiny_gguf.py OUT.gguf
    import sys

    print(write_tiny_gguf(Path(sys.argv[1])))
