"""pytest-benchmark: the cost of one DAS training epoch per layer on the embedded model (§4, ``harness.das``).

One epoch of the suite's DAS fit (the ToyMovieReview train pairs' fit part in batches of 8, each a run
restarted at the layer from the corrupted residual, forward and backward, plus the held-out loss before
and after) at an early, a middle and a late layer; the seconds per epoch of each are stored in the
benchmark JSON (``extra_info``) and the report. A run restarted at layer L computes the blocks from L on
only, so the cost falls with L: asserted, as the check that the restart works (a run that executed every
block would cost the same at every layer), as the late layer costing under 2/3 of each earlier one (measured
11.2 / 8.8 / 2.6 s at layers 0 / 15 / 27 on a 2-core AMD EPYC Zen 1; layers 0 and 15 are too close to order
reliably, since the ADJ prefix and the unembedding cost the same at every layer). The whole fit costs about the sum over its
layers of (epochs run × the epoch cost at that layer); the report's DAS training table gives the epochs.
"""

from __future__ import annotations

import time

from harness.das import DASSettings
from harness.direction_fitting import FitContext

BENCHMARK_LAYERS = (0, 15, 27)


def test_benchmark_das_epoch_per_layer(benchmark, model, toy_movie_review, toy_activations):
    settings = DASSettings(epochs=1, batch_size=8, layers=BENCHMARK_LAYERS, lr=3e-3)
    context = FitContext(model.bridge, toy_activations["train"], toy_movie_review.train_pairs, settings)
    context.training_data("das", 0)  # the clean and corrupted runs and the shared prefix, outside the timings

    def epoch(layer: int) -> float:
        start = time.perf_counter()
        context.das_estimator(layer).fit(*context.training_data("das", layer))
        return time.perf_counter() - start

    seconds = {layer: epoch(layer) for layer in BENCHMARK_LAYERS[1:]}
    seconds[0] = benchmark.pedantic(epoch, args=(0,), rounds=1, iterations=1)
    benchmark.extra_info.update({f"epoch_seconds_layer{layer}": seconds[layer] for layer in BENCHMARK_LAYERS})
    benchmark.extra_info["target"] = "epoch at layer 27 < 2/3 of the epoch at layers 0 and 15 (a restarted run skips the blocks before it)"
    print("\nDAS epoch seconds by layer: " + ", ".join(f"L{layer} {seconds[layer]:.2f}" for layer in BENCHMARK_LAYERS))
    assert seconds[27] < 2 / 3 * min(seconds[0], seconds[15])
