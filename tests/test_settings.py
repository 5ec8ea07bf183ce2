"""fixtures.settings: several ``--model`` values, each worker's device and the ``--device-map`` option.

- ``--model`` repeated and comma-separated lists resolve every model, in order; an unknown one is named;
  two values naming one model (its report directory) are refused;
- ``--device a,b`` is dealt to pytest-xdist workers in turn; without ``--device``, worker i takes CUDA
  device i mod count when CUDA is present, else cpu;
- ``--device-map`` accepts auto and balanced, and needs CUDA;
- ``model_scope`` finds a test's model from its id (the longest matching name).
"""

from __future__ import annotations

import pytest
import torch

from fixtures.settings import resolve_models, worker_device, worker_slot
from fixtures.xdist_models import model_scope
from harness.models.loading import ModelSpecError, resolve_device_map


def test_models_repeat_and_comma_lists(tiny_dirs):
    sources = resolve_models(["smollm2-135m", f"gemma3-270m, {tiny_dirs['gpt2']}"])
    assert [source.name for source in sources] == ["smollm2-135m", "gemma3-270m", "tiny-gpt2"]
    assert [source.kind for source in sources] == ["embedded", "embedded", "local_dir"]


def test_an_unknown_model_among_several_is_named():
    with pytest.raises(ModelSpecError, match="unknown --model 'no-such-model'"):
        resolve_models(["smollm2-135m,no-such-model"])


def test_one_model_given_twice_is_refused():
    with pytest.raises(ModelSpecError, match="give each model once"):
        resolve_models(["gemma3-270m", "gemma3-270m"])


def test_devices_are_dealt_to_workers(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [worker_device("cuda:0,cuda:1", worker) for worker in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert [worker_device(None, worker) for worker in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert worker_device(None, 1) == "cpu"
    with pytest.raises(ModelSpecError, match="CUDA is not available"):
        worker_device("cpu,cuda:1", 1)


def test_worker_slot_reads_pytest_xdist(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert worker_slot() == (0, 1)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert worker_slot() == (3, 4)


def test_device_map_needs_cuda_and_a_known_placement(monkeypatch):
    assert resolve_device_map(None) is None
    with pytest.raises(ModelSpecError, match="accepted: auto, balanced"):
        resolve_device_map("everywhere")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelSpecError, match="CUDA is not available"):
        resolve_device_map("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device_map("balanced") == "balanced"


def test_model_scope_takes_the_longest_matching_model():
    stems = ["gpt2", "gpt2-small"]
    assert model_scope("claims/test_a.py::test_x[gpt2-small-layer0]", stems) == "gpt2-small"
    assert model_scope("claims/test_a.py::test_x[gpt2-layer0]", stems) == "gpt2"
    assert model_scope("claims/test_a.py::test_x[gpt2]", stems) == "gpt2"
    assert model_scope("tests/test_b.py::test_y[gpt2x]", stems) is None
    assert model_scope("tests/test_b.py::test_y", stems) is None
