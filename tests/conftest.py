"""Shared fixtures of the harness tests: tiny random-weight models of the paper's two architectures
(and of the embedded model's, a grouped-query Llama: ``tiny_llama``).

The models are built without the hub: a GPT-2 and a GPT-NeoX (parallel attention + MLP, partial
rotary) with 2 layers and d_model 64, random weights (seed 0; LayerNorm gains and all biases drawn
at random too, so that folding LayerNorm and centring the writing weights are not no-ops), and the
embedded SmolLM2 tokenizer (vocab 49152), whose converted copy lives in the suite's cache. They are
saved to a session tmp dir and loaded through the project's own path, ``resolve_model`` +
``load_model``, so every test sees the same processed ``TransformerBridge`` the claims see.

The bridges are shared by the whole session: tests must leave no hooks behind (the autouse fixture
``no_hooks_leak`` below fails a test that does).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from harness.interventions.forward import residual_stream
from harness.interventions.edit import hooks_attached
from harness.models.loading import LoadedModel, converted_gguf_dir, default_cache_dir, embedded_gguf_path, load_model, resolve_model
from harness.datasets.toy_movie_review import ToyMovieReview, build_toy_movie_review
from tests.claims_sessions import (  # noqa: F401  (the end-to-end sessions' fixtures, started ahead)
    bad_transfer_data_session,
    broken_model_session,
    dying_worker_session,
    expectations_session,
    seeds_session,
    session_workers,
    sessions_started_ahead,
    two_model_session,
    unknown_among_several_session,
    unknown_model_sessions,
    xdist_session,
)

TINY_ARCHITECTURES = ("gpt2", "neox")
N_LAYERS, D_MODEL = 2, 64


def tiny_config(architecture: str, tokenizer):
    from transformers import GPT2Config, GPTNeoXConfig

    common = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, initializer_range=0.2)
    if architecture == "gpt2":
        return GPT2Config(n_layer=N_LAYERS, n_embd=D_MODEL, n_head=4, n_positions=64, **common)
    return GPTNeoXConfig(num_hidden_layers=N_LAYERS, hidden_size=D_MODEL, num_attention_heads=4,
                         intermediate_size=128, use_parallel_residual=True, rotary_pct=0.25,
                         max_position_embeddings=64, **common)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_CLAIMS_CACHE") or default_cache_dir())


@contextmanager
def offline():
    """HF_HUB_OFFLINE=1 while a model or tokenizer is loaded (from local files only; restored after,
    so claims that run later in the same session see the caller's environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def tokenizer(cache_dir: Path):
    """The real SmolLM2 tokenizer, from the converted copy of the embedded GGUF (no hub)."""
    from transformers import AutoTokenizer

    with offline():
        return AutoTokenizer.from_pretrained(converted_gguf_dir(embedded_gguf_path(), cache_dir))


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> dict[str, Path]:
    """``{"gpt2": dir, "neox": dir}``: saved random-weight models with the SmolLM2 tokenizer."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny-models")
    dirs = {}
    for architecture in TINY_ARCHITECTURES:
        torch.manual_seed(0)
        hf = AutoModelForCausalLM.from_config(tiny_config(architecture, tokenizer))
        with torch.no_grad():
            for name, parameter in hf.named_parameters():
                if parameter.dim() == 1:  # LayerNorm gains around 1, biases around 0
                    parameter.normal_(1.0 if name.endswith("weight") else 0.0, 0.2)
        dirs[architecture] = root / f"tiny-{architecture}"
        hf.save_pretrained(dirs[architecture])
        tokenizer.save_pretrained(dirs[architecture])
    return dirs


@pytest.fixture(scope="session")
def tiny_models(tiny_dirs: dict[str, Path], cache_dir: Path) -> dict[str, LoadedModel]:
    """The tiny models loaded through ``resolve_model`` + ``load_model`` (compatibility mode applied)."""
    with offline():
        return {
            architecture: load_model(resolve_model(str(path)), device="cpu", dtype="float32", cache_dir=cache_dir)
            for architecture, path in tiny_dirs.items()
        }


@pytest.fixture(params=TINY_ARCHITECTURES)
def tiny(request: pytest.FixtureRequest, tiny_models: dict[str, LoadedModel]) -> LoadedModel:
    """Each tiny model in turn."""
    return tiny_models[request.param]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tokenizer, cache_dir: Path) -> LoadedModel:
    """A 3-layer Llama, the embedded model's architecture (RMSNorm, rotary, grouped-query attention: 4
    query heads sharing 2 key/value heads), random weights (seed 0, RMSNorm gains drawn around 1)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(num_hidden_layers=3, hidden_size=D_MODEL, intermediate_size=128, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, vocab_size=len(tokenizer),
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         initializer_range=0.2, attn_implementation="eager")
    hf = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in hf.parameters():
            if parameter.dim() == 1:
                parameter.normal_(1.0, 0.2)
    path = tmp_path_factory.mktemp("tiny-models") / "tiny-llama"
    hf.save_pretrained(path)
    tokenizer.save_pretrained(path)
    with offline():
        return load_model(resolve_model(str(path)), device="cpu", dtype="float32", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory, tokenizer, cache_dir: Path) -> LoadedModel:
    """A 3-layer Gemma-3 (the second embedded model's architecture: embeddings scaled by sqrt(d_model),
    RMSNorm before *and after* each sublayer, query/key norms, grouped-query attention), random weights."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(num_hidden_layers=3, hidden_size=D_MODEL, intermediate_size=128, num_attention_heads=4,
                              num_key_value_heads=2, head_dim=16, max_position_embeddings=64, vocab_size=len(tokenizer),
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, sliding_window=8,
                              initializer_range=0.2, attn_implementation="eager")
    hf = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in hf.parameters():
            if parameter.dim() == 1:
                parameter.normal_(0.0, 0.2)  # Gemma's norms scale by (1 + weight)
    path = tmp_path_factory.mktemp("tiny-models") / "tiny-gemma"
    hf.save_pretrained(path)
    tokenizer.save_pretrained(path)
    with offline():
        return load_model(resolve_model(str(path)), device="cpu", dtype="float32", cache_dir=cache_dir)


@pytest.fixture(params=(*TINY_ARCHITECTURES, "llama"))
def tiny_lm(request: pytest.FixtureRequest, tiny_models: dict[str, LoadedModel]) -> LoadedModel:
    """Each tiny model in turn, the grouped-query Llama included."""
    return request.getfixturevalue("tiny_llama") if request.param == "llama" else tiny_models[request.param]


@pytest.fixture(scope="session")
def gpt2(tiny_models: dict[str, LoadedModel]) -> LoadedModel:
    return tiny_models["gpt2"]


@pytest.fixture(scope="session")
def toy(gpt2: LoadedModel) -> ToyMovieReview:
    """ToyMovieReview for the SmolLM2 tokenizer, on the tiny GPT-2 bridge, BOS prepended."""
    return build_toy_movie_review(gpt2.bridge, prepend_bos=True)


@pytest.fixture(scope="session")
def toy_resid(gpt2: LoadedModel, toy: ToyMovieReview) -> dict[str, torch.Tensor]:
    """Residual streams [n_layers+1, prompts, pos, d_model] of each split's distinct prompts."""
    return {split: residual_stream(gpt2.bridge, getattr(toy, split).tokens) for split in ("train", "test")}


@pytest.fixture(autouse=True)
def no_hooks_leak(request: pytest.FixtureRequest):
    """After a test that used a tiny bridge, none of its modules may keep a hook."""
    yield
    models = {}
    if "tiny_models" in request.fixturenames:
        models.update(request.getfixturevalue("tiny_models"))
    if "tiny_llama" in request.fixturenames:
        models["llama"] = request.getfixturevalue("tiny_llama")
    if models:
        leaked = {name: hooks_attached(m.bridge) for name, m in models.items() if hooks_attached(m.bridge)}
        assert not leaked, f"hooks left on the tiny bridges: {leaked}"


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer grouped-query Llama written as a GGUF file (``tests/tiny_gguf.py``)."""
    from tests.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama-gguf.gguf")


@pytest.fixture(scope="session")
def claims_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``--claims-cache`` for the end-to-end sessions: the GGUF's converted copy is made once (in whichever test
    loads it first) and the models' entries are keyed by their weights, so the sessions never collide."""
    return tmp_path_factory.mktemp("claims-cache")


@pytest.fixture(scope="session")
def two_models(tiny_gguf: Path, tiny_dirs: dict[str, Path]) -> list[Path]:
    """The end-to-end sessions' two local model forms: a GGUF file and a ``save_pretrained`` directory."""
    return [tiny_gguf, tiny_dirs["gpt2"]]
