"""AVE (audio-visual event localisation): its annotations, labels and feature files, in the standard layouts.

- ``Annotations.txt``: one line per video, ``class&youtube_id&quality&start&end`` (seconds).
- Feature and label files are HDF5 with the key ``avadataset``:
  audio ``[videos, 10, 128]`` (VGGish), visual ``[videos, 10, 7, 7, 512]`` (VGG-19 pool5),
  segment labels ``labels.h5`` one-hot ``[videos, 10, 29]`` with background at index 28.
- Split files (``train_order.h5``, ``val_order.h5``, ``test_order.h5``) hold video indices
  under the key ``order``.

``labels.h5`` is rebuilt from ``Annotations.txt`` when it is absent: segment s of a video is its
event's class when ``start <= s < end``, background otherwise, with the classes numbered in the
order the standard code uses (their first appearance in the file: Church bell = 0 … Mandolin = 27).
The rebuilt labels equal the released ``mil_labels.h5`` (video level) and ``labels_closs.h5``
(event or background per segment) on all 4,143 videos (``tests/test_av_data.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convforge.errors import ConvforgeError
from convforge.field_checks import env_limit

SEGMENTS = 10  # one-second segments per video
BACKGROUND = 28  # the background class's index; 28 events come before it
FEATURE_KEY, ORDER_KEY = "avadataset", "order"


@dataclass(frozen=True)
class AveVideo:
    """One annotated video: its event class, YouTube id, annotation quality and event start and end (s)."""

    event: str
    video_id: str
    quality: str
    start: int
    end: int


def read_annotations(path: str | Path) -> list[AveVideo]:
    """The videos of an AVE ``Annotations.txt``, in file order (the index the feature files use)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConvforgeError(f"could not read the AVE annotations {path}: {err.strerror or err}") from err
    videos = []
    for number, line in enumerate(lines, 1):
        fields = line.strip().split("&")
        if not line.strip() or fields[0] == "Category":  # a header line, in some copies
            continue
        try:
            event, video_id, quality, start, end = fields
            videos.append(AveVideo(event, video_id, quality, int(start), int(end)))
        except ValueError as err:
            raise ConvforgeError(f"{path}:{number}: expected 'class&youtube_id&quality&start&end', got "
                                 f"{line.strip()[:80]!r}") from err  # fmt: skip
    if not videos:
        raise ConvforgeError(f"{path} holds no annotated video")
    return videos


def event_classes(videos: list[AveVideo]) -> list[str]:
    """The 28 event classes in the standard code's order: their first appearance in the annotations."""
    return list(dict.fromkeys(video.event for video in videos))


def segment_labels(videos: list[AveVideo], classes: list[str] | None = None) -> np.ndarray:
    """One-hot labels ``[videos, 10, classes + 1]`` (float32): the event in its seconds, background elsewhere."""
    classes = classes or event_classes(videos)
    labels = np.zeros((len(videos), SEGMENTS, len(classes) + 1), dtype=np.float32)
    labels[:, :, len(classes)] = 1.0
    index = {name: k for k, name in enumerate(classes)}
    for v, video in enumerate(videos):
        for s in range(max(video.start, 0), min(video.end, SEGMENTS)):
            labels[v, s, len(classes)] = 0.0
            labels[v, s, index[video.event]] = 1.0
    return labels


def video_labels(videos: list[AveVideo], classes: list[str] | None = None) -> np.ndarray:
    """One-hot video-level labels ``[videos, classes + 1]``: the video's event class (as ``mil_labels.h5``)."""
    classes = classes or event_classes(videos)
    labels = np.zeros((len(videos), len(classes) + 1), dtype=np.float32)
    index = {name: k for k, name in enumerate(classes)}
    for v, video in enumerate(videos):
        labels[v, index[video.event]] = 1.0
    return labels


def read_h5(path: str | Path, key: str = FEATURE_KEY, what: str = "AVE file") -> np.ndarray:
    """The array under ``key`` in the HDF5 file ``path``; a missing file is one sentence saying where it was looked
    for and where such files come from."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"the {what} {path.name} is not in {path.parent}; the features come from the original "
                             "dataset release (AVE: YapengTian/AVE-ECCV18), or from convforge's semi-synthetic "
                             "writer (convforge av-synth ave)")  # fmt: skip
    try:
        with h5py.File(path, "r") as f:
            if key not in f:
                raise ConvforgeError(f"{path} has no dataset {key!r} (it has {', '.join(f.keys()) or 'none'})")
            data, limit = f[key], env_limit("CONVFORGE_MAX_FEATURE_GIB", 32)
            if not isinstance(data, h5py.Dataset) or data.dtype.kind not in "fiub":
                raise ConvforgeError(f"{path}: {key!r} is not an array of numbers")
            if data.size * data.dtype.itemsize > limit * 2**30:
                raise ConvforgeError(
                    f"{path}: {key!r} holds {data.size * data.dtype.itemsize / 2**30:,.1f} GiB, over "
                    f"the {limit} GiB convforge reads (set CONVFORGE_MAX_FEATURE_GIB to raise it)"
                )
            return data[()]
    except OSError as err:
        raise ConvforgeError(f"{path} is not a readable HDF5 file: {err}") from err


def load_segment_labels(folder: str | Path) -> np.ndarray:
    """``labels.h5`` from ``folder``, or the same labels rebuilt from its ``Annotations.txt`` when it is absent."""
    folder = Path(folder)
    if (folder / "labels.h5").is_file():
        return read_h5(folder / "labels.h5", what="AVE label file").astype(np.float32)
    return segment_labels(read_annotations(folder / "Annotations.txt"))


AUDIO_FILE, VISUAL_FILE = "audio_feature.h5", "visual_feature.h5"
BACKGROUND_FILES = ("audio_feature_noisy.h5", "visual_feature_noisy.h5", "labels_noisy.h5")


@dataclass
class AveSplit:
    """Some AVE videos: audio ``[n, 10, 128]``, visual ``[n, 10, 512]`` or ``[n, 10, 7, 7, 512]``, the class of
    each segment ``[n, 10]`` (28 = background) and of each video ``[n]``."""

    audio: np.ndarray
    visual: np.ndarray
    segments: np.ndarray
    videos: np.ndarray

    def __len__(self) -> int:
        return len(self.audio)

    def take(self, count: int, seed: int) -> AveSplit:
        """``count`` videos drawn with ``seed`` (all of them when ``count`` is 0 or at least their number)."""
        if not count or count >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), count, replace=False))
        return AveSplit(self.audio[keep], self.visual[keep], self.segments[keep], self.videos[keep])

    @staticmethod
    def join(a: AveSplit, b: AveSplit) -> AveSplit:
        """The videos of both."""
        pairs = ((a.audio, b.audio), (a.visual, b.visual), (a.segments, b.segments), (a.videos, b.videos))
        return AveSplit(*(np.concatenate([x, y]) for x, y in pairs))


def _check_features(path: Path, array: np.ndarray, count: int, width: int | None = None) -> np.ndarray:
    if array.ndim < 3 or array.shape[0] != count or array.shape[1] != SEGMENTS or (width and array.shape[-1] != width):
        wanted = f"[{count}, {SEGMENTS}, {width}]" if width else f"[{count}, {SEGMENTS}, ..., channels]"
        raise ConvforgeError(f"{path} holds features of shape {list(array.shape)}; expected {wanted}")
    if array.ndim not in (3, 5):
        raise ConvforgeError(f"{path} holds features of shape {list(array.shape)}; AVE visual features are [videos, "
                             "10, channels] or [videos, 10, 7, 7, channels]")  # fmt: skip
    return array.astype(np.float32, copy=False)


def _video_classes(folder: Path, segments: np.ndarray) -> np.ndarray:
    """Each video's class: ``mil_labels.h5``, else the annotations, else its most frequent event segment."""
    for name, read in (("mil_labels.h5", lambda path: read_h5(path, what="AVE label file")),
                       ("Annotations.txt", lambda path: video_labels(read_annotations(path)))):  # fmt: skip
        if (folder / name).is_file():
            labels = read(folder / name)
            if labels.shape != (len(segments), BACKGROUND + 1):
                raise ConvforgeError(f"{folder / name} gives video labels of shape {list(labels.shape)}; the segment "
                                     f"labels cover {len(segments)} videos of {BACKGROUND + 1} classes")  # fmt: skip
            return labels.argmax(-1).astype(np.int64)
    events = np.stack([(segments == c).sum(1) for c in range(BACKGROUND)], 1)
    return events.argmax(1).astype(np.int64)


def load_ave_split(folder: str | Path, split: str) -> AveSplit:
    """The videos of ``split`` (``train``, ``val`` or ``test``) of the AVE folder ``folder``, in its order."""
    folder = Path(folder)
    order = read_h5(folder / f"{split}_order.h5", ORDER_KEY, "AVE split file").astype(np.int64)
    labels = load_segment_labels(folder)
    if labels.ndim != 3 or labels.shape[1:] != (SEGMENTS, BACKGROUND + 1):
        raise ConvforgeError(f"the AVE labels in {folder} have shape {list(labels.shape)}; expected [videos, "
                             f"{SEGMENTS}, {BACKGROUND + 1}] (28 events and background, one-hot)")  # fmt: skip
    if order.ndim != 1 or order.size and (order.min() < 0 or order.max() >= len(labels)):
        raise ConvforgeError(f"{folder / f'{split}_order.h5'} must list video indices from 0 to {len(labels) - 1}")
    audio = _check_features(
        folder / AUDIO_FILE, read_h5(folder / AUDIO_FILE, what="AVE feature file"), len(labels), 128
    )
    visual = _check_features(folder / VISUAL_FILE, read_h5(folder / VISUAL_FILE, what="AVE feature file"), len(labels))
    segments = labels.argmax(-1).astype(np.int64)
    return AveSplit(audio[order], visual[order], segments[order], _video_classes(folder, segments)[order])


def load_ave_background(folder: str | Path, visual_shape: tuple[int, ...]) -> AveSplit:
    """The background videos of the weakly supervised setting (all segments background)."""
    folder = Path(folder)
    audio = read_h5(folder / BACKGROUND_FILES[0], what="AVE background feature file")
    audio = _check_features(folder / BACKGROUND_FILES[0], audio, len(audio), 128)
    visual = read_h5(folder / BACKGROUND_FILES[1], what="AVE background feature file")
    visual = _check_features(folder / BACKGROUND_FILES[1], visual, len(audio))
    if visual.shape[2:] != tuple(visual_shape):
        raise ConvforgeError(f"{folder / BACKGROUND_FILES[1]} holds visual features {list(visual.shape[2:])} a "
                             f"segment, the main files {list(visual_shape)}")  # fmt: skip
    count = len(audio)
    return AveSplit(
        audio, visual, np.full((count, SEGMENTS), BACKGROUND, np.int64), np.full(count, BACKGROUND, np.int64)
    )
