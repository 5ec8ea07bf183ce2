"""Renderer: DAS training per layer (§4; early stopping on held-out pairs, ``harness/directions/das.py``): the
section's table, ``report.data["das_training"]`` and the validation-loss figure ``das_validation_loss.png``."""

from __future__ import annotations

from tabulate import tabulate

from harness.directions.das import MIN_IMPROVEMENT, PATIENCE, TARGET_LOSS, UNTRAINED_MARGIN, VALIDATION_FRACTION
from harness.directions.fitting import DASTraining
from harness.reporting.rendering import render


@render.register(DASTraining)
def _render_das_training(training: DASTraining, report) -> None:
    suffix = "" if training.seed == 0 else f"_seed{training.seed}"
    layers = training.layers
    report.data[f"das_training{suffix}"] = {
        "settings": training.settings.describe(), "seed": training.seed, "n_train_pairs": training.n_train_pairs,
        "untrained_margin": UNTRAINED_MARGIN, "patience": PATIENCE, "min_improvement": MIN_IMPROVEMENT,
        "target_loss": TARGET_LOSS,
        "layers": {str(layer): {**s.__dict__, "train_loss": list(s.train_loss), "validation_loss": list(s.validation_loss)}
                   for layer, s in layers.items()},
        "dropped": {str(layer): why for layer, why in training.dropped().items()},
    }
    rows = [[layer, s.epochs_run, s.best_epoch, f"{s.initial_validation_loss:.3f}", f"{s.best_validation_loss:.3f}",
             f"{s.final_train_loss:.3f}", s.stop_reason, "yes" if s.trained else "**no**"] for layer, s in layers.items()]
    any_summary = next(iter(layers.values()), None)
    split = (f"{any_summary.n_fit} fit / {any_summary.n_validation} validation pairs" if any_summary else "no layers")
    dropped = training.dropped()
    dropped_text = ("Every layer trained." if not dropped else
                    "Dropped (not trained; their directions feed no other claim: the patching sweeps, the ablations, "
                    "K2's direction, D1, the early-layer directions): "
                    + "; ".join(f"L{layer}: {why}" for layer, why in dropped.items()) + ".")
    report.add_section(
        f"DAS training (§4){'' if training.seed == 0 else f', seed {training.seed}'}",
        f"1-D DAS, {training.settings.describe()}, seed {training.seed}, on {training.n_train_pairs} ToyMovieReview "
        f"train pairs at ADJ, split {split} (seeded, stratified by label, {VALIDATION_FRACTION:.0%} of each label's "
        "clean prompts held out). Loss = (LD_patched − LD_clean)/(LD_corrupted − LD_clean): 1 = corrupted "
        "behaviour, 0 = clean behaviour restored. The direction kept is the epoch with the lowest validation loss "
        f"(epoch 0 = the initialisation); training stops when the validation loss reaches {TARGET_LOSS} (the clean "
        f"behaviour restored), after {PATIENCE} epochs without a {MIN_IMPROVEMENT} improvement, or at the epoch "
        f"cap. A layer trained when its best validation loss is at least "
        f"{UNTRAINED_MARGIN} below its initial one.\n\n"
        + tabulate(rows, headers=["layer", "epochs run", "best epoch", "initial val. loss", "best val. loss",
                                  "final train loss", "stopped", "trained"], tablefmt="github",
                   disable_numparse=True)
        + f"\n\n{dropped_text}",
    )

    def draw(figure) -> None:
        ax = figure.subplots()
        for layer, s in layers.items():
            curve = [s.initial_validation_loss, *s.validation_loss]
            line, = ax.plot(range(len(curve)), curve, marker="o", markersize=3, label=f"L{layer}",
                            linestyle="-" if s.trained else ":")
            ax.plot([s.best_epoch], [s.best_validation_loss], marker="*", markersize=9, color=line.get_color())
        ax.axhline(1, color="grey", linewidth=0.5)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xlabel("epoch (0 = initialisation)")
        ax.set_ylabel("held-out DAS loss (1 = corrupted, 0 = clean)")
        ax.legend(fontsize=7, ncol=2, title="layer (dotted: not trained; ★ best)", title_fontsize=7)
        ax.set_title(f"DAS validation loss per layer, seed {training.seed}: {report.model_name}", fontsize=9)

    report.add_figure(f"das_validation_loss{suffix}.png", draw)
