"""A training run's Hub-ready folder: weights, config, card with the measured metrics, CED plot, per-image CSV."""
from __future__ import annotations

import logging
from pathlib import Path

from .card import training_markdown
from .loop import Trainer

log = logging.getLogger("train")


def finish(trainer: Trainer, out: Path, data_dir: Path, evaluate: bool, command: str,
           progress: bool = True) -> Path:
    """Hub-ready folder in out/final: weights, config, card with measured metrics, CED plot, per-image CSV."""
    from zoo.hub import render_card, save_folder

    final = out / "final"
    config = trainer.config()
    state = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    save_folder(final, state, config, render_card(config, None, training_markdown(config)))
    metrics = None
    if evaluate:
        from .evaluate import evaluate_folder
        metrics = evaluate_folder(final, data_dir, trainer.recipe.dataset, trainer.recipe.test_split, final,
                                  progress=progress)
        save_folder(final, state, config, render_card(config, metrics, training_markdown(config)))
    (final / "train_command.txt").write_text(command + "\n")
    log.info("Hub-ready folder: %s%s", final, f" (NME {metrics['nme']:.4f})" if metrics else "")
    return final
