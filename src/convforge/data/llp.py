"""LLP (Look, Listen and Parse): video-level labels and the dense per-modality events of its val and test sets.

The standard layout is tab-separated text with a header:

- ``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv``: ``filename`` and
  ``event_labels`` (class names separated by commas);
- ``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv``: ``filename``, ``onset``, ``offset`` (whole
  seconds) and ``event_labels`` (one class) per event.

Features are one ``.npy`` file per video and stream (audio ``[10, 128]``, 2-D visual
``[80, 2048]``, 3-D visual ``[10, 512]``), named after the video. The classes are numbered in
the standard evaluation code's order (``LLP_CLASSES``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from convforge.errors import ConvforgeError

LLP_CLASSES = (
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)", "Basketball_bounce", "Fire_alarm", "Chainsaw",
    "Cello", "Banjo", "Singing", "Chicken_rooster", "Violin_fiddle", "Vacuum_cleaner", "Baby_laughter", "Accordion",
    "Lawn_mower", "Motorcycle", "Helicopter", "Acoustic_guitar", "Telephone_bell_ringing", "Baby_cry_infant_cry",
    "Blender", "Clapping",
)  # fmt: skip
SEGMENTS = 10
_INDEX = {name: k for k, name in enumerate(LLP_CLASSES)}


def _rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise ConvforgeError(f"{path} has no column {', '.join(missing)}; LLP files are tab-separated with "
                                     f"the columns {', '.join(columns)}")  # fmt: skip
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConvforgeError(f"could not read the LLP file {path}: {getattr(err, 'strerror', None) or err}") from err
    for line, row in enumerate(rows, 2):
        if any(row.get(c) is None for c in columns):
            raise ConvforgeError(f"{path}:{line}: the row has fewer than the {len(columns)} columns "
                                 f"{', '.join(columns)}")  # fmt: skip
        name = row["filename"]
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise ConvforgeError(f"{path}:{line}: {name[:60]!r} is not a video file name (it names feature files, "
                                 "so it may not be empty or hold a path)")  # fmt: skip
    return rows


def _class_index(path: Path, line: int, name: str) -> int:
    if name not in _INDEX:
        raise ConvforgeError(f"{path}:{line}: {name!r} is not one of LLP's 25 classes")
    return _INDEX[name]


def read_video_labels(path: str | Path) -> dict[str, np.ndarray]:
    """Each video's labels as a 0/1 vector of the 25 classes, by file name, in file order."""
    path = Path(path)
    labels = {}
    for line, row in enumerate(_rows(path, ("filename", "event_labels")), 2):
        vector = np.zeros(len(LLP_CLASSES), dtype=np.float32)
        for name in filter(None, (n.strip() for n in row["event_labels"].split(","))):
            vector[_class_index(path, line, name)] = 1.0
        labels[row["filename"]] = vector
    return labels


def read_dense_events(path: str | Path) -> dict[str, np.ndarray]:
    """The events of one modality as ``[25, 10]`` 0/1 matrices by file name: class k is on in seconds
    ``onset ≤ s < offset``, as the standard evaluation reads them."""
    path = Path(path)
    events: dict[str, np.ndarray] = {}
    for line, row in enumerate(_rows(path, ("filename", "onset", "offset", "event_labels")), 2):
        try:
            onset, offset = int(row["onset"]), int(row["offset"])
        except ValueError as err:
            raise ConvforgeError(f"{path}:{line}: onset and offset must be whole seconds") from err
        matrix = events.setdefault(row["filename"], np.zeros((len(LLP_CLASSES), SEGMENTS), dtype=np.int64))
        matrix[_class_index(path, line, row["event_labels"].strip()), max(onset, 0) : min(offset, SEGMENTS)] = 1
    return events


def ground_truth(
    video: str, audio: dict[str, np.ndarray], visual: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A video's audio and visual ``[25, 10]`` matrices (zeros where it has no event in that modality)."""
    empty = np.zeros((len(LLP_CLASSES), SEGMENTS), dtype=np.int64)
    return audio.get(video, empty), visual.get(video, empty)


SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVAL_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
FEATURE_FOLDERS = (("vggish", (10, 128)), ("res152", (80, 2048)), ("r2plus1d_18", (10, 512)))  # audio, 2-D, 3-D


class LLPVideos:
    """One split of LLP: its videos' weak labels and their per-video feature files, read a batch at a time.

    Features are looked for in ``feats/<stream>/<video>.npy`` below the dataset folder (the standard layout), or
    ``<stream>/<video>.npy``. Every file is checked to exist before any training starts.
    """

    def __init__(self, folder: str | Path, split: str, limit: int = 0, seed: int = 0) -> None:
        folder = Path(folder)
        labels = read_video_labels(folder / SPLIT_FILES[split])
        names = list(labels)
        if limit and limit < len(names):
            keep = sorted(np.random.default_rng(seed).choice(len(names), limit, replace=False))
            names = [names[i] for i in keep]
        self.folder, self.split, self.names = folder, split, names
        self.labels = np.stack([labels[n] for n in names]) if names else np.zeros((0, len(LLP_CLASSES)), np.float32)
        self.streams = [self._stream_folder(stream) for stream, _ in FEATURE_FOLDERS]
        self._check_files()

    def _stream_folder(self, stream: str) -> Path:
        for candidate in (self.folder / "feats" / stream, self.folder / stream):
            if candidate.is_dir():
                return candidate
        return self.folder / "feats" / stream

    def _check_files(self) -> None:
        for (stream, _), folder in zip(FEATURE_FOLDERS, self.streams):
            missing = [n for n in self.names if not (folder / f"{n}.npy").is_file()]
            if missing:
                more = f" (and {len(missing) - 1:,} more of the {self.split} split)" if len(missing) > 1 else ""
                raise ConvforgeError(f"the LLP feature file {missing[0]}.npy is not in {folder}{more}; the {stream} "
                                     "features come from the original dataset release (LLP: YapengTian/AVVP-ECCV20), "
                                     "or from convforge's semi-synthetic writer (convforge av-synth llp)")  # fmt: skip

    def __len__(self) -> int:
        return len(self.names)

    def features(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One video's audio ``[10, 128]``, 2-D visual ``[80, 2048]`` and 3-D visual ``[10, 512]`` features."""
        arrays = []
        for (stream, shape), folder in zip(FEATURE_FOLDERS, self.streams):
            path = folder / f"{self.names[index]}.npy"
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)  # the header first: shape before bytes
                if not isinstance(array, np.ndarray):  # an .npz archive under a .npy name
                    raise ValueError("it is not a single array")
                if array.shape != shape or array.dtype.kind not in "fiu":
                    raise ConvforgeError(f"{path} holds {stream} features of shape {array.shape} ({array.dtype}); "
                                         f"LLP's are numbers of shape {shape}")  # fmt: skip
                arrays.append(np.asarray(array, dtype=np.float32))
            except (OSError, ValueError, EOFError) as err:
                raise ConvforgeError(
                    f"{path} is not a readable .npy feature file: {err or type(err).__name__}"
                ) from err
        return arrays[0], arrays[1], arrays[2]
