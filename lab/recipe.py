"""What decides a training run, fixed before it starts: each network's own recipe, the command line that
changes it, and the frozen ``Recipe`` the other steps read. A bad option is a ``TrainingError`` here, before any
photo is loaded."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "none")

# Each network's own recipe (measured: lab/notebook.md); an option given on the command line wins. The
# augmentation's rotation, zoom, shift and mixup have no option: they are fixed by the network.
NETWORK_RECIPES: dict[str, dict[str, Any]] = {
    "pretrained": dict(
        image_size=192,
        epochs=12,
        lr=5e-4,
        warmup_epochs=1,
        weight_decay=5e-2,
        label_smoothing=0.1,
        dropout=0.2,
        mixup=0.0,
        ema=0.99,
        freeze_bn=True,
        shrink=0.2,
        rotation=0.05,
        # No zoom-in crops or shifts: they can cut off the hem that tells a dress from a t-shirt.
        zoom=0.0,
        shift=0.0,
    ),
    "none": dict(
        image_size=160,
        epochs=80,
        lr=2e-3,
        warmup_epochs=3,
        weight_decay=5e-2,
        label_smoothing=0.1,
        dropout=0.3,
        mixup=0.2,
        ema=0.99,
        freeze_bn=False,
        shrink=0.0,
        rotation=0.05,
        zoom=0.2,
        shift=0.1,
    ),
}


class TrainingError(Exception):
    """A problem the user can fix (the data, an option, the backbone's weights); printed as one plain line."""


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a run, fixed before it starts: the data, the network and how it is trained."""

    data_dir: Path
    out: Path
    backbone: str
    image_size: int
    widths: tuple[int, ...]  # --backbone none: channels of each residual stage
    blocks: tuple[int, ...]  # --backbone none: residual blocks in each stage
    epochs: int
    batch_size: int
    lr: float
    warmup_epochs: int
    weight_decay: float
    label_smoothing: float
    dropout: float
    mixup: float  # Beta(a, a) parameter; 0: none
    rotation: float  # fraction of a turn, either way
    zoom: float  # fraction, in and out
    shift: float  # fraction, either way
    shrink: float  # probability of a photo shrunk onto its border's colour
    freeze_bn: bool
    ema: float  # weight moving-average momentum; 0: none
    seed: int
    threads: int  # TensorFlow's intra-op threads; 0: all cores
    limit: int  # train on N photos only (smoke runs); 0: all
    fold: tuple[int, int] | None  # (I, K): hold out fold I of K
    all_photos: bool

    def as_json(self) -> dict[str, Any]:
        """The recipe as summary.json records it."""
        data = asdict(self)
        data.update(data_dir=str(self.data_dir), out=str(self.out), widths=list(self.widths))
        data.update(blocks=list(self.blocks), fold=None if self.fold is None else "{}/{}".format(*self.fold))
        return data


def parse_args(argv: Sequence[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """``python -m lab.train``'s options; ``description`` heads its ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m lab.train", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path("../shared/data/clothing-dataset-small"),
        help="folder holding train/ and validation/, one sub-folder per label",
    )
    p.add_argument("--out", type=Path, default=Path("lab/runs/default"), help="output folder for the run")
    p.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="efficientnet-lite0",
        help="ImageNet-pretrained EfficientNet-Lite to fine-tune, or 'none' to train a small CNN from scratch",
    )
    p.add_argument("--image-size", type=int, help="square input size in pixels (pretrained: 192; none: 160)")
    p.add_argument("--widths", default="32,64,128,256", help="--backbone none: channels of each residual stage")
    p.add_argument("--blocks", default="1,2,2,1", help="--backbone none: residual blocks in each stage")
    p.add_argument("--epochs", type=int, help="pretrained: 12; none: 80")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, help="peak learning rate (AdamW, cosine decay); pretrained: 5e-4; none: 2e-3")
    p.add_argument("--warmup-epochs", type=int, help="pretrained: 1; none: 3")
    p.add_argument("--weight-decay", type=float, help="AdamW's (default 0.05)")
    p.add_argument("--label-smoothing", type=float, help="default 0.1")
    p.add_argument("--dropout", type=float, help="before the classifier; pretrained: 0.2; none: 0.3")
    p.add_argument(
        "--shrink",
        type=float,
        help="probability of shrinking a photo to 40-100%% onto its border's colour: small garments in the frame "
        "(pretrained: 0.2; none: 0)",
    )
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        help="keep the batch-norm layers at their ImageNet statistics and scales (pretrained: yes; none: no)",
    )
    p.add_argument("--ema", type=float, help="weight moving-average momentum; 0 disables (default 0.99)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow backend: intra-op threads (0 = all cores)")
    p.add_argument("--limit", type=int, default=0, help="use only N training images (smoke tests)")
    p.add_argument(
        "--fold",
        help="cross-validation: 'I/K' trains on train + validation less fold I of K (stratified, by --seed) and "
        "validates on that fold; its logits are saved as oof.npz",
    )
    p.add_argument(
        "--all-photos",
        action="store_true",
        help="train on train + validation, hold nothing out, keep the last epoch (the epoch count that "
        "cross-validation chose: --epochs)",
    )
    args = p.parse_args(argv)
    if args.fold and args.all_photos:
        p.error("--fold and --all-photos exclude each other")
    return args


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The run's recipe: the network's own, with what the command line gave instead."""
    network = NETWORK_RECIPES["none" if args.backbone == "none" else "pretrained"]
    given = {key: getattr(args, key) for key in network if getattr(args, key, None) is not None}
    widths, blocks = stages(args.widths, "--widths"), stages(args.blocks, "--blocks")
    if len(widths) != len(blocks):
        raise TrainingError("--widths and --blocks need the same number of stages")
    return Recipe(
        **(network | given),
        data_dir=args.data_dir,
        out=args.out,
        backbone=args.backbone,
        widths=widths,
        blocks=blocks,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=args.threads,
        limit=args.limit,
        fold=parse_fold(args.fold) if args.fold else None,
        all_photos=args.all_photos,
    )


def parse_recipe(argv: Sequence[str] | None = None, description: str | None = None) -> Recipe:
    """The recipe a command line asks for (``python -m lab.train ARGS``); ``description`` heads its ``--help``."""
    return recipe_from(parse_args(argv, description))


def stages(value: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise TrainingError(f"{option} {value!r}: use whole numbers separated by commas, e.g. 32,64") from None


def parse_fold(fold: str) -> tuple[int, int]:
    """``I/K`` as (I, K), K >= 2 and 0 <= I < K."""
    try:
        index, count = (int(part) for part in fold.split("/"))
    except ValueError:
        raise TrainingError(f"--fold {fold!r}: use I/K, e.g. 0/5") from None
    if not (count >= 2 and 0 <= index < count):
        raise TrainingError(f"--fold {fold!r}: K >= 2 and 0 <= I < K")
    return index, count
