"""pytest-benchmark: the cost of one DAS training epoch per layer on the embedded model (§4, ``harness.directions.das``).

One epoch of the suite's DAS fit (the ToyMovieReview train pairs' fit part in batches of 8, each a run
restarted at the layer from the corrupted residual, forward and backward, plus the held-out loss before
and after) at an early, a middle and a late layer; the seconds per epoch of each are stored in the
benchmark JSON (``extra_info``) and the report. A run restarted at layer L computes the blocks from L on
only, so the cost falls with L: asserted, as the check that the restart works (a run that executed every
block would cost the same at every layer), as the late layer costing under 2/3 of each earlier one (layers
0 and 15 are too close to order reliably, since the ADJ prefix and the unembedding cost the same at every
layer). The whole fit costs about the sum over its
layers of (epochs run × the epoch cost at that layer); the report's DAS training table gives the epochs.
"""

from __future__ import annotations

import time

from harness.directions.das import DASSettings
from harness.directions.fitting import FitContext, fit_method



def benchmark_layers(n_layers: int) -> tuple[int, int, int]:
    """An early, a middle and a late layer of the model (0, n/2 and n - 1)."""
    return 0, n_layers // 2, n_layers - 1


def test_benchmark_das_epoch_per_layer(benchmark, model, toy_movie_review, toy_activations):
    early, middle, late = layers = benchmark_layers(model.bridge.cfg.n_layers)
    settings = DASSettings(epochs=1, batch_size=8, layers=layers, lr=3e-3)
    context = FitContext(model.bridge, toy_activations["train"], toy_movie_review.train_pairs, settings)
    context.training_data("das", 0)  # the clean and corrupted runs and the shared prefix, outside the timings

    def epoch(layer: int) -> float:
        start = time.perf_counter()
        fit_method("das", context, (layer,))
        return time.perf_counter() - start

    seconds = {layer: epoch(layer) for layer in (middle, late)}
    seconds[early] = benchmark.pedantic(epoch, args=(early,), rounds=1, iterations=1)
    benchmark.extra_info.update({f"epoch_seconds_layer{layer}": seconds[layer] for layer in layers})
    benchmark.extra_info["target"] = (f"epoch at layer {late} < 2/3 of the epoch at layers {early} and {middle} "
                                      "(a restarted run skips the blocks before it)")
    print("\nDAS epoch seconds by layer: " + ", ".join(f"L{layer} {seconds[layer]:.2f}" for layer in layers))
    assert seconds[late] < 2 / 3 * min(seconds[early], seconds[middle])
