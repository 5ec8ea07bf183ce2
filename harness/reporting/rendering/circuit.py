"""Renderers: the ToyMovieReview circuit by path patching (§6.4): its section, ``report.data["circuit"]``
and the stage-1 head-effect figure ``circuit_path_patching_heads.png`` (train pairs, which choose the
circuit, and test pairs, which score it, side by side; the claims' CIs are in the claims table)."""

from __future__ import annotations

import torch
from tabulate import tabulate

from harness.experiments.circuit import CircuitResults
from harness.interventions.path_patching import Node
from harness.reporting.rendering import render


@render.register(CircuitResults)
def _render_circuit(results: CircuitResults, report) -> None:
    heads, effects = results.head_effects()
    effect_of = {node: float(e) for node, e in zip(heads, effects)}
    test_heads, test_effects = results.test.head_effects()
    test_effect_of = {node: float(e) for node, e in zip(test_heads, test_effects)}
    mlp_effects = {n: float(e) for n, e in zip(results.selection.senders, results.selection.effects()) if n.is_mlp}
    top_mlps = sorted(mlp_effects, key=lambda n: -abs(mlp_effects[n]))[:5]
    rows = [[f"{r.layer}.{r.head}", f"{effect_of[Node(r.layer, r.head)]:.1f}",
             f"{test_effect_of[Node(r.layer, r.head)]:.1f}", *(f"{w:.2f}" for w in r.attention.values()),
             ", ".join(r.roles) or "none"] for r in results.roles]
    writers, writer_effects = results.writer_effects()
    top_writers = writer_effects.argsort(descending=True)[:8].tolist()
    report.data["circuit"] = {
        "head_effects": {str(n): e for n, e in effect_of.items()},
        "test_head_effects": {str(n): e for n, e in test_effect_of.items()}, "mlp_effects": {str(n): e for n, e in mlp_effects.items()},
        "receivers": [str(n) for n in results.receivers], "circuit": [str(n) for n in results.circuit],
        "writer_effects": {str(writers[i]): float(writer_effects[i]) for i in top_writers},
        "stage2_senders": {kind: {"kept": len(kept), "of": len(results.estimated[kind][0]),
                                  "atp_spearman": results.attribution_agreement(kind)}
                           for kind, (kept, _) in results.to_receivers.items()},
        "direction_layers": results.direction_layers, "roles": [r.__dict__ for r in results.roles],
    }
    report.add_section(
        "ToyMovieReview circuit by path patching (§6.4)",
        f"The circuit is chosen on the {len(results.selection.labels)} train pairs and scored (K1–K3) on the "
        f"{len(results.test.labels)} test pairs. "
        "Stage 1: each head (query head, z through its W_O slice) and MLP patched from the corrupted prompt into "
        "the clean run, everything else frozen clean, receiver = final residual at the last position. Effect = "
        "(LD_patched − LD_clean)/(LD_clean − LD_corrupted) × 100 (−100: the path carries the whole change). "
        f"Largest MLPs: {', '.join(f'{n} {mlp_effects[n]:.1f}' for n in top_mlps)}.\n\n"
        f"Top {len(results.roles)} heads on the train pairs and their roles (mean clean attention weight on the train "
        "prompts, threshold 0.1):\n\n"
        + tabulate(rows, headers=["head", "effect % (train)", "effect % (test)", "END→ADJ+VRB", "END→SBJ2", "SBJ2→ADJ+VRB", "roles"],
                   tablefmt="github")
        + f"\n\nStage 2 receivers (summary readers): {', '.join(map(str, results.receivers))}; largest head senders by "
        f"max |effect| over their q/k/v inputs (Wang et al.'s step 3: later layers recompute freely; "
        f"{len(results.stage2_pairs)} train pairs, {results.settings.stage2_pairs // 2} of each label): "
        + ", ".join(f"{writers[i]} {float(writer_effects[i]):.1f}" for i in top_writers)
        + ". " + _pruning(results)
        + f".\n\nCircuit patched for K2 (on the test pairs): {', '.join(map(str, results.circuit))}; direction: "
        + (f"{results.settings.direction_method} at residual layers {results.direction_layers} (head layer → the "
           "trained layer nearest to the one it writes into)." if results.direction_layers else
           f"none ({results.settings.direction_method} trained at no layer: no direction-only patch)."),
    )

    def draw(figure) -> None:
        grids = []
        for values in (effect_of, test_effect_of):
            grid = torch.zeros(results.n_layers, results.n_heads)
            for node, effect in values.items():
                grid[node.layer, node.head] = effect
            grids.append(grid)
        bound = max(float(grid.abs().max()) for grid in grids) or 1.0
        for ax, grid, split in zip(figure.subplots(1, 2), grids, ("train pairs (choose)", "test pairs (score)")):
            image = ax.imshow(grid.T.numpy(), cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
            ax.set_xlabel("layer")
            ax.set_ylabel("head")
            ax.set_title(split, fontsize=9)
        figure.colorbar(image, ax=figure.axes, label="path-patching effect, % of clean − corrupted LD")
        figure.suptitle(f"Stage-1 path patching (head → final residual), ToyMovieReview: {report.model_name}")

    report.add_figure("circuit_path_patching_heads.png", draw)


def _pruning(results: CircuitResults) -> str:
    """How stage 2 chose the senders it patched exactly, and AtP's agreement with the exact patch on them."""
    counts = {kind: (len(kept), len(results.estimated[kind][0])) for kind, (kept, _) in results.to_receivers.items()}
    if all(kept == every for kept, every in counts.values()):
        return "Every sender patched exactly"
    agreement = ", ".join(f"{kind} {results.attribution_agreement(kind):.3f}" for kind in counts)
    return (f"Senders patched exactly: the {results.settings.stage2_keep} of largest |effect| estimated by attribution "
            f"patching (of {max(every for _, every in counts.values())} per input; harness.interventions.attribution_patching); "
            f"Spearman's ρ between AtP's and the exact |effect| on them: {agreement}")
