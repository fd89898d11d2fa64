"""Writing semi-synthetic features (:mod:`convforge.data.av_synthetic`) in the standard AVE and LLP file layouts.

Both writers read the real labels from a dataset folder the user names and write a new folder that the
standard readers (:mod:`convforge.data.ave`, :mod:`convforge.data.llp`) and the ``av-event`` and ``av-parse``
tasks read as they would the real release:

- AVE: ``audio_feature.h5``, ``visual_feature.h5`` (``[videos, 10, 512]``, or ``[videos, 10, 7, 7, 512]``
  maps), ``labels.h5``, ``mil_labels.h5``, the split files, ``Annotations.txt``, and the background videos of
  the weakly supervised setting (their real audio features copied when the source has them).
- LLP: the label CSVs and ``feats/vggish``, ``feats/res152``, ``feats/r2plus1d_18`` with one ``.npy`` per video.

Each folder gets a ``SYNTHETIC.json`` saying how it was made and that it is not the benchmark.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from convforge.data import ave, llp
from convforge.data.av_synthetic import RectifiedGaussian, SyntheticStream, SynthSettings, region_weights
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.progress_bars import hidden

NOT_THE_BENCHMARK = ("Semi-synthetic features on the real labels and timings. Results on them measure temporal "
                     "localisation on controlled data, not the published benchmark.")  # fmt: skip
SPLITS = ("train", "val", "test")
CHUNK = 256  # videos generated and written at a time


def _fresh_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConvforgeError(f"{out} is a file; name a new or empty folder to write the features into")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConvforgeError(f"{out} is not empty; choose a new folder, or pass --overwrite to replace the files "
                                 "convforge writes there")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)


def _limit(count: int | None, what: str) -> None:
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise InvalidValueError(f"{what} must be a positive number of videos, got {count!r}")


def _write_h5(path: Path, array: np.ndarray, key: str = ave.FEATURE_KEY) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=array)


def _describe(out: Path, dataset: str, settings: SynthSettings, extra: dict[str, Any]) -> None:
    record = {
        "dataset": dataset,
        "note": NOT_THE_BENCHMARK,
        "snr_db": settings.snr_db,
        "audio_only": settings.audio_only,
        "visual_only": settings.visual_only,
        "seed": settings.seed,
        **extra,
    }
    (out / "SYNTHETIC.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")  # fmt: skip


def _chunks(count: int, progress: bool, what: str) -> Iterator[range]:
    with tqdm(total=count, desc=what, unit="video", disable=hidden(progress), leave=False) as bar:
        for start in range(0, count, CHUNK):
            part = range(start, min(start + CHUNK, count))
            yield part
            bar.update(len(part))


# ---------------------------------------------------------------- AVE


def _sample(count: int, videos: int | None, seed: int) -> np.ndarray:
    """Positions of ``videos`` of ``count`` items drawn with ``seed``, in their order (all of them without a limit)."""
    if not videos or videos >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, videos, replace=False))


def _ave_selection(source: Path, videos: int | None, seed: int) -> tuple[list[int], dict[str, np.ndarray]]:
    """The source video indices kept, in order, and each split's order renumbered into them."""
    orders = {split: ave.read_h5(source / f"{split}_order.h5", ave.ORDER_KEY, "AVE split file").astype(np.int64)
              for split in SPLITS}  # fmt: skip
    kept = {split: order[_sample(len(order), videos, seed)] for split, order in orders.items()}
    chosen = sorted({int(i) for order in kept.values() for i in order})
    new_index = {old: new for new, old in enumerate(chosen)}
    return chosen, {split: np.array([new_index[int(i)] for i in order], np.int64) for split, order in kept.items()}


def write_ave_synthetic(source: str | Path, out: str | Path, settings: SynthSettings | None = None,
                        videos: int | None = None, visual_maps: bool = False, overwrite: bool = False,
                        progress: bool = True) -> Path:  # fmt: skip
    """Write AVE-synth to ``out`` from the AVE folder ``source`` (``Annotations.txt`` and the split files; its
    ``audio_feature_noisy.h5``, when present, calibrates the audio background and joins as the real background
    videos). ``videos`` keeps that many videos of each split, drawn with the seed; ``visual_maps`` writes 7×7×512
    maps."""
    source, out, settings = Path(source), Path(out), settings or SynthSettings()
    _limit(videos, "videos")
    annotations = ave.read_annotations(source / "Annotations.txt")
    classes = ave.event_classes(annotations)
    chosen, orders = _ave_selection(source, videos, settings.seed)
    if chosen and chosen[-1] >= len(annotations):
        raise ConvforgeError(f"the split files in {source} name video {chosen[-1]}, but Annotations.txt has only "
                             f"{len(annotations)} videos")  # fmt: skip
    _fresh_output(out, overwrite)
    annotations = [annotations[i] for i in chosen]
    labels = ave.segment_labels(annotations, classes)
    rng = np.random.default_rng(settings.seed)
    real_background = source / "audio_feature_noisy.h5"
    noisy_audio = ave.read_h5(real_background).astype(np.float32) if real_background.is_file() else None
    audio_background = (RectifiedGaussian.fit(noisy_audio) if noisy_audio is not None
                        else RectifiedGaussian.generic(128, rng))  # fmt: skip
    audio = SyntheticStream(audio_background, len(classes), settings.snr_db, rng)
    visual = SyntheticStream(RectifiedGaussian.generic(512, rng), len(classes), settings.snr_db, rng)
    visual_shape = (ave.SEGMENTS, 7, 7, 512) if visual_maps else (ave.SEGMENTS, 512)
    heard_only = seen_only = 0

    import h5py

    with h5py.File(out / "audio_feature.h5", "w") as fa, h5py.File(out / "visual_feature.h5", "w") as fv:
        audio_set = fa.create_dataset(ave.FEATURE_KEY, (len(annotations), ave.SEGMENTS, 128), np.float32)
        visual_set = fv.create_dataset(ave.FEATURE_KEY, (len(annotations), *visual_shape), np.float32)
        for part in _chunks(len(annotations), progress, "AVE-synth"):
            audio_part = np.empty((len(part), ave.SEGMENTS, 128), np.float32)
            visual_part = np.empty((len(part), *visual_shape), np.float32)
            for k, v in enumerate(part):
                events = labels[v, :, : len(classes)]
                heard, seen = settings.modalities(rng)
                heard_only += heard and not seen
                seen_only += seen and not heard
                audio_part[k] = audio.features(events * heard, rng)
                weights = region_weights(rng) if visual_maps else None
                visual_part[k] = visual.features(events * seen, rng, weights).reshape(visual_shape)
            audio_set[part.start : part.stop] = audio_part
            visual_set[part.start : part.stop] = visual_part

    _write_h5(out / "labels.h5", labels)
    _write_h5(out / "mil_labels.h5", ave.video_labels(annotations, classes))
    for split, order in orders.items():
        _write_h5(out / f"{split}_order.h5", order, ave.ORDER_KEY)
    lines = [f"{a.event}&{a.video_id}&{a.quality}&{a.start}&{a.end}" for a in annotations]
    (out / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "\n".join(lines) + "\n",
                                         encoding="utf-8")  # fmt: skip
    noisy_count = len(noisy_audio) if noisy_audio is not None else 178
    if noisy_audio is None:
        noisy_audio = audio.features(np.zeros((noisy_count * ave.SEGMENTS, len(classes))), rng)
        noisy_audio = noisy_audio.reshape(noisy_count, ave.SEGMENTS, 128)
    noisy_visual = visual.features(np.zeros((noisy_count * ave.SEGMENTS, len(classes))), rng,
                                   region_weights(rng) if visual_maps else None)  # fmt: skip
    _write_h5(out / "audio_feature_noisy.h5", noisy_audio.astype(np.float32))
    _write_h5(out / "visual_feature_noisy.h5", noisy_visual.reshape(noisy_count, *visual_shape))
    noisy_labels = np.zeros((noisy_count, len(classes) + 1), np.float32)
    noisy_labels[:, len(classes)] = 1
    _write_h5(out / "labels_noisy.h5", noisy_labels)
    _describe(out, "ave", settings, {
        "videos": {split: len(order) for split, order in orders.items()},
        "visual": "x".join(map(str, visual_shape)),
        "audio_background": "fitted to the real background audio" if real_background.is_file() else "generic",
        "visual_background": "generic (no real visual features to fit)",
        "background_videos": f"{noisy_count}, real audio" if real_background.is_file() else f"{noisy_count}, synthetic",
        "events_heard_only": int(heard_only), "events_seen_only": int(seen_only),
    })  # fmt: skip
    return out


# ---------------------------------------------------------------- LLP


def _train_events(labels: np.ndarray, settings: SynthSettings, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Invented per-modality ``[25, 10]`` events for a training video's weak labels: one event per class, at a
    random onset and length, heard and/or seen as ``settings`` says."""
    audio_events = np.zeros((len(llp.LLP_CLASSES), llp.SEGMENTS), np.int64)
    visual_events = np.zeros_like(audio_events)
    for c in np.flatnonzero(labels):
        onset = int(rng.integers(0, llp.SEGMENTS))
        offset = int(rng.integers(onset + 1, llp.SEGMENTS + 1))
        heard, seen = settings.modalities(rng)
        audio_events[c, onset:offset] = heard
        visual_events[c, onset:offset] = seen
    return audio_events, visual_events


def _copy_rows(source: Path, target: Path, keep: set[str] | None) -> None:
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerows([rows[0], *(r for r in rows[1:] if keep is None or (r and r[0] in keep))])


def write_llp_synthetic(source: str | Path, out: str | Path, settings: SynthSettings | None = None,
                        videos: int | None = None, overwrite: bool = False, progress: bool = True) -> Path:  # fmt: skip
    """Write LLP-synth to ``out`` from the LLP label folder ``source`` (the ``AVVP_*.csv`` files). Val and test
    videos get features for their real per-modality events; training videos, whose events are not annotated, get
    invented timings for their weak labels. ``videos`` keeps that many videos of each split, drawn with the seed."""
    source, out, settings = Path(source), Path(out), settings or SynthSettings()
    _limit(videos, "videos")
    splits = {split: llp.read_video_labels(source / name) for split, name in llp.SPLIT_FILES.items()}
    dense_audio = llp.read_dense_events(source / llp.EVAL_FILES["audio"])
    dense_visual = llp.read_dense_events(source / llp.EVAL_FILES["visual"])
    _fresh_output(out, overwrite)
    rng = np.random.default_rng(settings.seed)
    classes = len(llp.LLP_CLASSES)
    streams = [SyntheticStream(RectifiedGaussian.generic(shape[-1], rng), classes, settings.snr_db, rng)
               for _, shape in llp.FEATURE_FOLDERS]  # fmt: skip
    folders = [out / "feats" / name for name, _ in llp.FEATURE_FOLDERS]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    kept_names: set[str] = set()
    for split, labels in splits.items():
        names = [list(labels)[i] for i in _sample(len(labels), videos, settings.seed)]
        kept_names.update(names)
        for part in _chunks(len(names), progress, f"LLP-synth {split}"):
            for name in (names[i] for i in part):
                if split == "train":
                    heard, seen = _train_events(labels[name], settings, rng)
                else:
                    heard, seen = llp.ground_truth(name, dense_audio, dense_visual)
                audio_feats = streams[0].features(heard.T, rng)
                frames = streams[1].features(np.repeat(seen.T, 8, axis=0), rng)  # 8 frames a second
                clips = streams[2].features(seen.T, rng)
                for folder, array in zip(folders, (audio_feats, frames, clips)):
                    np.save(folder / f"{name}.npy", array)
    for name in (*llp.SPLIT_FILES.values(), *llp.EVAL_FILES.values()):
        _copy_rows(source / name, out / name, kept_names if videos else None)
    _describe(out, "llp", settings, {
        "videos": {split: min(len(labels), videos or len(labels)) for split, labels in splits.items()},
        "streams": {name: "x".join(map(str, shape)) for name, shape in llp.FEATURE_FOLDERS},
        "background": "generic (no real LLP features to fit)",
        "training_timings": "invented: one event per weak label at a random onset and length",
    })  # fmt: skip
    return out
