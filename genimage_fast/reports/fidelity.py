"""Which of a run's numbers the paper's pipeline could not have produced the same way (report footnotes).

Each eval's results.json carries `protocol` (engine/evaluate.py); a cell of the report is footnoted
when its run was produced differently from GenImage's own pipeline (the detector code it ran, under
`detector_codes/` in GenImage-Dataset/GenImage):
- degradations applied to the model-size crop (`--degrade-at crop`) instead of the full test image
  (paper §3.3): Task 2 cells only;
- reals decoded at reduced DCT scale (`data.fast_jpeg_decode`): PIL always decoded at full size;
- an eval transform other than the detector's original (DESIGN §5);
- records whose pixels differ from the release's files (`--store jpeg:Q|raw|match-real`, `--max-side`,
  `--protocol grommelt`), read from the records' manifest as eval recorded it;
- best.pt chosen on val, the very split reported (GenImage has no test split): optimistic;
- results.json without a protocol (written before protocols were recorded: crop degradation, the
  shared default eval transform).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# The eval transform of each detector's original code (EVAL_TRANSFORMS names, DESIGN §5).
ORIGINAL_EVAL_TRANSFORMS: dict[str, str] = {
    "resnet50": "timm_resnet50",
    "deit_s": "timm_vit",
    "swin_t": "timm_vit",
    "cnnspot": "cnndetection",
    "spec": "autogan",
    "f3net": "f3net",
    "gramnet": "gramnet",
    "npr": "npr",  # NPR's ProGAN recipe: Resize((256, 256)) + CenterCrop(224) (train.py get_val_opt)
    "npr_genimage": "npr_genimage",  # NPR README's GenImage recipe: translate_duplicate + CenterCrop(224)
}
FULL_DECODE = "full"  # Loader.decoder of a full-size decode (the paper's PIL pipeline)
DECODER_NOTES = {  # why a cell's pixels are not PIL's full-size decode, by Loader.decoder
    "dct-scaled": "JPEG reals decoded with the `dct-scaled` decoder (data.fast_jpeg_decode: a reduced DCT "
                  "scale), not at full size as PIL did",
    "nvjpeg": "JPEG reals decoded with the `nvjpeg` decoder (on the GPU, at full size): its IDCT rounds "
              "differently from PIL's libjpeg-turbo (<= 1 level mean)",
    "mixed": "columns decoded by different decoders (results.json protocol.decoder_by_spec)",
}
PIXEL_EXACT_STORES = ("original", "lossless")  # stores that keep the release's decoded pixels


@dataclass(frozen=True)
class Note:
    key: str  # identifies the note across runs (same key, same footnote number)
    text: str
    degraded_only: bool = False  # applies to Task 2 (degraded) cells only


def run_notes(method: str, protocol: dict[str, Any] | None) -> list[Note]:
    """The footnotes one run's cells carry, given its method key and results.json's `protocol`."""
    if not protocol:
        return [Note("no-protocol", "no protocol recorded (results.json from before protocols were recorded: "
                                    "degradations on the model-size crop, one shared eval transform)")]
    notes: list[Note] = []
    if protocol.get("degrade_at") == "crop":
        notes.append(Note("crop", "degraded on the model-size crop (--degrade-at crop), not on the full test "
                                  "image as the paper did: σ in crop pixels, JPEG grid aligned to the crop",
                          degraded_only=True))
    decoder = protocol.get("decoder")
    if decoder and decoder != FULL_DECODE:
        notes.append(Note(f"decoder:{decoder}", DECODER_NOTES.get(decoder, f"JPEG reals decoded with the "
                                                                           f"`{decoder}` decoder")))
    original = ORIGINAL_EVAL_TRANSFORMS.get(method)
    used = protocol.get("eval_transform")
    if original and used and used != original:
        notes.append(Note(f"transform:{method}:{used}", f"eval transform `{used}`, not the original "
                                                        f"pipeline's `{original}`"))
    store = protocol.get("store") or "original"
    if store not in PIXEL_EXACT_STORES:
        notes.append(Note(f"store:{store}", f"records stored as `{store}`: not the release's pixels"))
    if protocol.get("max_side"):
        notes.append(Note(f"max_side:{protocol['max_side']}", f"records downsized to max side "
                                                             f"{protocol['max_side']} (--max-side)"))
    if protocol.get("records_protocol"):
        name = protocol["records_protocol"]
        notes.append(Note(f"records:{name}", f"records built with --protocol {name} (filtered / re-encoded data)"))
    if protocol.get("selection") == "val":
        notes.append(Note("selection:val", "checkpoint (best.pt) chosen on val, the split reported: optimistic "
                                           "(GenImage has no test split; train with data.selection_fraction)"))
    return notes


def cell_notes(notes: Iterable[Note], degraded: bool) -> list[Note]:
    """The notes that apply to a clean (degraded=False) or a degraded cell."""
    return [n for n in notes if degraded or not n.degraded_only]


class Footnotes:
    """Numbers notes in order of first use across a report; marks cells and writes each table's legend."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.texts: dict[str, str] = {}
        self._used: list[str] = []

    def mark(self, notes: Sequence[Note]) -> str:
        """' [1,3]' for a cell ('' when no note applies)."""
        marks = []
        for note in notes:
            if note.key not in self.numbers:
                self.numbers[note.key] = len(self.numbers) + 1
                self.texts[note.key] = note.text
            if note.key not in self._used:
                self._used.append(note.key)
            marks.append(self.numbers[note.key])
        return f" [{','.join(str(m) for m in sorted(marks))}]" if marks else ""

    def legend(self) -> str:
        """The notes marked since the last legend, one line each; '' when none."""
        used, self._used = sorted(self._used, key=self.numbers.__getitem__), []
        return "".join(f"\n[{self.numbers[k]}] {self.texts[k]}  " for k in used) + ("\n" if used else "")

    def as_dict(self) -> dict[str, str]:
        return {str(n): self.texts[k] for k, n in self.numbers.items()}
