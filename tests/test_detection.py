"""Detection: the assigner, the loss, NMS, COCO mAP, YOLO-format data with its flaws, and ONNX export."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import convforge
from convforge.data.detection_augment import flip_horizontal, scale_translate
from convforge.data.detection_loader import Augmentation, DetectionLoader
from convforge.data.letterbox import letterbox
from convforge.data.yolo_detection import DatasetWarning, load_detection_split
from convforge.engine.export import export_onnx
from convforge.nn.detect_head import DetectHead, make_anchors
from convforge.tasks.detect.assigner import TaskAlignedAssigner
from convforge.tasks.detect.boxes import complete_iou, non_max_suppression
from convforge.tasks.detect.coco_map import MeanAveragePrecision
from convforge.tasks.detect.loss import DetectionLoss, distribution_focal_loss

# ---------------------------------------------------------------- the assigner


def _grid(h: int, w: int, stride: int) -> torch.Tensor:
    points, _ = make_anchors([(h, w)], [stride])
    return points * stride  # pixel centres


def test_the_assigner_takes_the_top_k_aligned_anchors_inside_each_box():
    anchors = _grid(4, 4, 8)  # centres at 4, 12, 20, 28 px
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]]])  # holds the four anchors (4|12, 4|12)
    scores = torch.full((1, 16, 2), 0.5)
    pred = gt.expand(1, 16, 4).clone()  # every anchor predicts the box exactly
    inside = torch.tensor([0, 1, 4, 5])
    scores[0, inside, 1] = torch.tensor([0.9, 0.8, 0.7, 0.6])  # class 1 scores, best first
    assign = TaskAlignedAssigner(top_k=2, num_classes=2)(scores, pred, anchors, torch.tensor([[1]]), gt,
                                                         torch.tensor([[True]]))  # fmt: skip
    assert assign.foreground.nonzero()[:, 1].tolist() == [0, 1]  # the two best aligned, nothing outside
    assert (assign.labels[0, :2] == 1).all()
    torch.testing.assert_close(assign.boxes[0, :2], gt[0].expand(2, 4))
    # scores: t = s^0.5 · IoU^6 with IoU 1, normalised so the best anchor gets its IoU (1)
    expected = torch.tensor([1.0, math.sqrt(0.8 / 0.9)])
    torch.testing.assert_close(assign.scores[0, :2, 1], expected)
    assert assign.scores[0, :, 0].abs().sum() == 0 and assign.scores[0, 2:].abs().sum() == 0


def test_an_anchor_claimed_by_two_boxes_goes_to_the_one_its_prediction_overlaps_most():
    anchors = torch.tensor([[10.0, 10.0]])
    gt = torch.tensor([[[0.0, 0.0, 20.0, 20.0], [5.0, 5.0, 40.0, 40.0]]])
    pred = torch.tensor([[[6.0, 6.0, 38.0, 38.0]]])  # much closer to the second box
    assign = TaskAlignedAssigner(top_k=10, num_classes=3)(torch.full((1, 1, 3), 0.5), pred, anchors,
                                                          torch.tensor([[0, 2]]), gt,
                                                          torch.ones(1, 2, dtype=torch.bool))  # fmt: skip
    assert assign.foreground.item() and assign.gt_index.item() == 1 and assign.labels.item() == 2


def test_padding_boxes_and_images_without_boxes_assign_nothing():
    anchors = _grid(2, 2, 8)
    gt = torch.tensor([[[0.0, 0.0, 16.0, 16.0]], [[0.0, 0.0, 16.0, 16.0]]])
    mask = torch.tensor([[True], [False]])  # the second image's row is padding
    assign = TaskAlignedAssigner(num_classes=1)(torch.full((2, 4, 1), 0.5), gt.expand(2, 4, 4).clone()[:, :4],
                                                anchors, torch.zeros(2, 1), gt, mask)  # fmt: skip
    assert assign.foreground[0].all() and not assign.foreground[1].any()
    no_boxes = (torch.zeros(1, 0), torch.zeros(1, 0, 4), torch.zeros(1, 0, dtype=torch.bool))
    empty = TaskAlignedAssigner(num_classes=1)(torch.full((1, 4, 1), 0.5), torch.zeros(1, 4, 4), anchors, *no_boxes)
    assert not empty.foreground.any() and empty.scores.sum() == 0


# ---------------------------------------------------------------- the loss


def test_complete_iou_matches_torchvision():
    a = torch.rand(50, 4) * 50
    a[:, 2:] += a[:, :2] + 1
    b = a + torch.randn(50, 4) * 5
    b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 1)
    ours = complete_iou(a, b).squeeze(-1)
    theirs = 1 - torchvision.ops.complete_box_iou_loss(a, b, reduction="none")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert complete_iou(a, a).squeeze(-1).sub(1).abs().max() < 1e-5


def test_distribution_focal_loss_mixes_the_two_neighbouring_bins():
    logits = torch.randn(3, 16)
    target = torch.tensor([3.0, 3.25, 14.99])
    ce = lambda k: F.cross_entropy(logits, torch.tensor(k), reduction="none")  # noqa: E731
    expected = torch.stack([ce([3, 3, 14])[0], 0.75 * ce([3, 3, 14])[1] + 0.25 * ce([4, 4, 15])[1],
                            0.01 * ce([3, 3, 14])[2] + 0.99 * ce([4, 4, 15])[2]])  # fmt: skip
    torch.testing.assert_close(distribution_focal_loss(logits, target), expected, atol=1e-5, rtol=1e-5)


def _maps_predicting(head: DetectHead, box: torch.Tensor, size: int, class_index: int, logit: float = 8.0):
    """Raw maps whose every cell predicts ``box`` (pixels) sharply, with one class at ``logit``."""
    maps = []
    for stride in head.strides:
        h = w = size // stride
        points, _ = make_anchors([(h, w)], [stride])
        distances = torch.cat((points - box[:2] / stride, box[2:] / stride - points), 1).clamp(0, 14.99)
        lower = distances.floor().long()
        upper_weight = distances - lower
        logits = torch.full((h * w, 4, head.reg_max), -30.0)
        # two neighbouring bins with log-weights so the softmax expectation equals the distance
        logits.scatter_(2, lower[..., None], torch.log((1 - upper_weight).clamp(min=1e-9))[..., None])
        logits.scatter_(2, (lower + 1).clamp(max=15)[..., None], torch.log(upper_weight.clamp(min=1e-9))[..., None])
        cls = torch.full((h * w, head.num_classes), -logit)
        cls[:, class_index] = logit
        maps.append(torch.cat((logits.view(h * w, -1), cls), 1).T.reshape(1, -1, h, w))
    return maps


def test_a_perfect_prediction_has_almost_no_box_loss_and_a_shifted_one_more():
    head = DetectHead([8, 8, 8], num_classes=3)
    loss = DetectionLoss(head)
    box = torch.tensor([16.0, 24.0, 80.0, 72.0])
    targets = torch.tensor([[0, 2, *box.tolist()]])
    perfect = loss(_maps_predicting(head, box, 128, 2), targets)
    shifted = loss(_maps_predicting(head, box + 12, 128, 2), targets)
    wrong_class = loss(_maps_predicting(head, box, 128, 0), targets)
    assert perfect.box < 1e-3 and shifted.box > 20 * perfect.box + 0.1
    assert wrong_class.cls > perfect.cls
    assert torch.isclose(perfect.total, perfect.box + perfect.cls + perfect.dfl)


def test_without_objects_only_the_class_loss_remains():
    head = DetectHead([8, 8, 8], num_classes=3)
    maps = [torch.randn(2, 64 + 3, s, s) for s in (8, 4, 2)]
    parts = DetectionLoss(head)(maps, torch.zeros(0, 6))
    logits = torch.cat([m[:, 64:].flatten(2) for m in maps], 2)
    expected = 0.5 * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="sum")
    assert parts.box == 0 and parts.dfl == 0
    torch.testing.assert_close(parts.cls, expected)


def test_the_loss_trains_a_detector_to_find_a_box():
    torch.manual_seed(0)
    model = convforge.create_model("leyolo_nano", num_classes=2)
    image = torch.full((1, 3, 96, 96), 0.2)
    image[..., 24:72, 16:64] = 0.9  # a bright rectangle, x 16–64, y 24–72
    targets = torch.tensor([[0, 1, 16.0, 24.0, 64.0, 72.0]])
    loss = DetectionLoss(convforge.tasks.detect.task.find_head(model))
    optimizer = torch.optim.AdamW(model.parameters(), 3e-3)
    model.train()
    first = None
    for _ in range(40):
        parts = loss(model(image), targets)
        first = first if first is not None else parts.total.item()
        optimizer.zero_grad()
        parts.total.backward()
        optimizer.step()
    assert parts.total.item() < 0.5 * first
    model.train()  # BatchNorm statistics of one image: check the training-mode decode instead of eval
    maps = model(image)
    head = convforge.tasks.detect.task.find_head(model)
    best = non_max_suppression(head.decode(maps), conf=0.0)[0][0]
    assert best[5] == 1 and torchvision.ops.box_iou(best[None, :4], targets[:, 2:]).item() > 0.5


# ---------------------------------------------------------------- NMS


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.1, 0.0]])
    prediction = torch.cat((boxes, scores), 1).T[None]
    kept = non_max_suppression(prediction, conf=0.25, iou=0.5)[0]
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7]) and kept[:, 5].tolist() == [0, 1]
    assert len(non_max_suppression(prediction, conf=0.05, iou=0.5)[0]) == 3
    assert len(non_max_suppression(prediction, conf=0.05, iou=0.5, max_det=1)[0]) == 1
    assert len(non_max_suppression(prediction, conf=0.05, iou=0.95)[0]) == 4  # IoU 0.68 is below 0.95
    both = torch.cat((boxes[:1], torch.tensor([[0.9, 0.6]])), 1).T[None]  # one box, two likely classes
    assert len(non_max_suppression(both, conf=0.25)[0]) == 1
    assert non_max_suppression(both, conf=0.25, multi_label=True)[0][:, 5].tolist() == [0, 1]
    with pytest.raises(ValueError, match="conf must lie in"):
        non_max_suppression(prediction, conf=2)


# ---------------------------------------------------------------- mAP


def _jittered_predictions(shared_data, seed: int = 0):
    """COCO128's ground truth, and detections made from it: jittered, some relabelled, some missed, some invented."""
    dataset = load_detection_split(str(shared_data / "coco128" / "coco128.yaml"))
    rng = np.random.default_rng(seed)
    images = []
    for labels in dataset.labels:
        w, h = 640, 480
        gt = np.stack([(labels[:, 1] - labels[:, 3] / 2) * w, (labels[:, 2] - labels[:, 4] / 2) * h,
                       (labels[:, 1] + labels[:, 3] / 2) * w, (labels[:, 2] + labels[:, 4] / 2) * h], 1)  # fmt: skip
        classes = labels[:, 0].astype(int)
        kept = rng.uniform(size=len(gt)) < 0.8
        boxes = gt[kept] + rng.normal(0, 6, (kept.sum(), 4))
        det_classes = np.where(rng.uniform(size=kept.sum()) < 0.85, classes[kept], rng.integers(0, 80, kept.sum()))
        extra = rng.integers(0, 4)
        xy = rng.uniform(0, 500, (extra, 2))
        boxes = np.concatenate([boxes, np.concatenate([xy, xy + rng.uniform(10, 100, (extra, 2))], 1)])
        det_classes = np.concatenate([det_classes, rng.integers(0, 80, extra)])
        scores = np.round(rng.uniform(0, 1, len(boxes)), 2)  # rounded: ties must be broken as COCO breaks them
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        images.append((gt, classes, boxes, scores, det_classes))
    return images


def test_map_equals_pycocotools_on_a_saved_set_of_predictions(shared_data, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = _jittered_predictions(shared_data)
    to_xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]  # noqa: E731
    annotations, results = [], []
    for image_id, (gt, classes, boxes, scores, det_classes) in enumerate(images, 1):
        for b, c in zip(gt, classes):
            area = float((b[2] - b[0]) * (b[3] - b[1]))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                "bbox": to_xywh(b), "area": area, "iscrowd": 0})  # fmt: skip
        results += [{"image_id": image_id, "category_id": int(c), "bbox": to_xywh(b), "score": float(s)}
                    for b, s, c in zip(boxes, scores, det_classes)]  # fmt: skip
    ground_truth = tmp_path / "gt.json"
    saved = tmp_path / "predictions.json"
    ground_truth.write_text(json.dumps({"images": [{"id": i} for i in range(1, len(images) + 1)],
                                        "annotations": annotations,
                                        "categories": [{"id": c} for c in range(80)]}))  # fmt: skip
    saved.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ground_truth))
        evaluation = COCOeval(coco, coco.loadRes(str(saved)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()

    ours = MeanAveragePrecision()
    loaded = json.loads(saved.read_text())
    for image_id, (gt, classes, *_) in enumerate(images, 1):
        mine = [r for r in loaded if r["image_id"] == image_id]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in mine)]).reshape(-1, 4)
        ours.add(gt, classes, boxes, [r["score"] for r in mine], [r["category_id"] for r in mine])
    scores = ours.compute()
    print(f"mAP50-95 ours {scores['map50_95']:.6f} pycocotools {evaluation.stats[0]:.6f}")
    assert 0.2 < scores["map50_95"] < 0.9  # a non-trivial case
    assert scores["map50_95"] == pytest.approx(evaluation.stats[0], abs=1e-9)
    assert scores["map50"] == pytest.approx(evaluation.stats[1], abs=1e-9)
    assert scores["map75"] == pytest.approx(evaluation.stats[2], abs=1e-9)


def test_perfect_detections_score_one_and_none_score_zero():
    metric = MeanAveragePrecision()
    metric.add([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1], [[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.8], [0, 1])
    assert metric.compute()["map50_95"] == pytest.approx(1.0)
    empty = MeanAveragePrecision()
    empty.add([[0, 0, 10, 10]], [0], np.zeros((0, 4)), [], [])
    assert empty.compute()["map50"] == 0


# ---------------------------------------------------------------- data


def test_coco128_loads_with_warnings_for_the_missing_labels_and_the_orphan_label_files(shared_data):
    with pytest.warns(DatasetWarning) as caught:
        dataset = load_detection_split(str(shared_data / "coco128" / "coco128.yaml"))
    messages = " ".join(str(w.message) for w in caught)
    assert "2 image(s) of train have no label file" in messages and "2 label file(s) have no image" in messages
    assert len(dataset) == 128 and dataset.num_boxes == 929 and dataset.names[0] == "person"
    assert sum(len(label) == 0 for label in dataset.labels) == 2


def test_a_small_dataset_with_an_unlabelled_image_and_an_orphan_label_trains_without_crashing(shared_data, tmp_path):
    source = shared_data / "coco128"
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    names = sorted(p.stem for p in (source / "labels" / "train2017").glob("*.txt"))
    for stem in names[:3]:
        shutil.copy(source / "images" / "train2017" / f"{stem}.jpg", tmp_path / "images")
        shutil.copy(source / "labels" / "train2017" / f"{stem}.txt", tmp_path / "labels")
    (tmp_path / "labels" / f"{names[0]}.txt").unlink()  # an image without labels
    (tmp_path / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a label without an image
    (tmp_path / "data.yaml").write_text("train: images\nval: images\nnames: [" + ", ".join(f"c{i}" for i in range(80))
                                        + "]\n")  # fmt: skip
    with pytest.warns(DatasetWarning):
        dataset = load_detection_split(str(tmp_path / "data.yaml"))
    loader = DetectionLoader(dataset, 128, 3, Augmentation(), shuffle=True)
    images, targets = next(iter(loader))
    assert images.shape == (3, 3, 128, 128) and targets.shape[1] == 6
    model = convforge.create_model("leyolo_nano").train()
    assert torch.isfinite(DetectionLoss(convforge.tasks.detect.task.find_head(model))(model(images), targets).total)


def test_every_process_gets_the_same_number_of_training_batches(shared_data):
    dataset = load_detection_split(str(shared_data / "coco128" / "coco128.yaml"))
    dataset.images, dataset.labels = dataset.images[:5], dataset.labels[:5]
    loaders = [DetectionLoader(dataset, 64, 2, Augmentation(), rank=r, world_size=2) for r in (0, 1)]
    assert [len(loader) for loader in loaders] == [2, 2] and [loader.num_examples for loader in loaders] == [3, 3]
    assert sorted(loaders[0].indices + loaders[1].indices) == [0, 0, 1, 2, 3, 4]


def test_ground_truth_boxes_are_clipped_to_the_image():
    from convforge.data.detection_loader import normalised_to_pixels

    boxes, classes = normalised_to_pixels(np.array([[3, 0.98, 0.5, 0.1, 0.2]], dtype=np.float32), 100, 50)
    torch.testing.assert_close(boxes, torch.tensor([[93.0, 20.0, 100.0, 30.0]]))
    assert classes.tolist() == [3]


def test_a_bad_label_line_is_named_with_its_file_and_line(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    torchvision.io.write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(tmp_path / "images" / "a.png"))
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text("train: images\nval: images\nnames: [cat, dog]\n")
    with pytest.raises(convforge.ConvforgeError, match=r"a.txt:2: class 7 is not one of 0 to 1"):
        load_detection_split(str(tmp_path / "data.yaml"))


def test_letterbox_geometry_maps_boxes_back_to_the_original_image():
    image = torch.zeros(3, 200, 400, dtype=torch.uint8)
    canvas, geometry = letterbox(image, 320)
    assert canvas.shape == (3, 320, 320) and geometry.ratio == 0.8 and geometry.pad == (0.0, 80.0)
    assert (canvas[:, :80] == 114).all() and (canvas[:, 80:240] == 0).all()
    box = torch.tensor([[40.0, 100.0, 120.0, 200.0]])
    torch.testing.assert_close(geometry.to_original(box), torch.tensor([[50.0, 25.0, 150.0, 150.0]]))


def test_augmentation_moves_the_boxes_with_the_pixels():
    image = torch.zeros(3, 100, 200, dtype=torch.uint8)
    image[:, 20:60, 30:90] = 255
    box = torch.tensor([[30.0, 20.0, 90.0, 60.0]])
    flipped, flipped_box = flip_horizontal(image, box)
    assert flipped_box.tolist() == [[110.0, 20.0, 170.0, 60.0]] and flipped[0, 40, 110:170].min() == 255
    canvas, moved, keep = scale_translate(image, box, 256, 0.5, 0.1, torch.Generator().manual_seed(3))
    x1, y1, x2, y2 = moved[0].round().long().tolist()
    assert keep.item()
    assert canvas[0, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].min() == 255  # inside the box: the white rectangle
    assert canvas[0, y2 + 2 :, x1:x2].max() < 255 and canvas[0, y1:y2, x2 + 2 :].max() < 255


# ---------------------------------------------------------------- export


def test_the_exported_onnx_model_reproduces_pytorch(tmp_path):
    model = convforge.create_model("leyolo_nano", num_classes=5).eval()
    result = export_onnx(model, tmp_path / "nano.onnx", (2, 3, 160, 160))
    print(f"ONNX vs PyTorch: max |diff| {result.max_abs_diff:.2e}, relative {result.max_rel_diff:.2e}")
    assert result.parity and result.max_rel_diff <= 1e-4
    import onnxruntime

    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 160, 160)  # another batch size: the batch axis is free
    theirs = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        torch.testing.assert_close(theirs, model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_leyolo_nano_learns_coco128_at_320(shared_data, tmp_path):
    """The overfitting check COCO128 exists for: 40 epochs on its 128 images (about 12 minutes on 2 cores)."""
    result = convforge.train("leyolo_nano", str(shared_data / "coco128" / "coco128.yaml"), epochs=40, batch_size=16,
                             image_size=320, opt="adamw", lr=0.002, warmup_epochs=3, project=str(tmp_path),
                             progress=False)  # fmt: skip
    first, last = result.metrics[0], result.metrics[-1]
    print(f"train loss {first['train_loss']:.2f} → {last['train_loss']:.2f}, "
          f"mAP50 {first['val_map50']:.4f} → {last['val_map50']:.4f}")  # fmt: skip
    assert last["train_loss"] < 0.8 * first["train_loss"]
    assert last["val_map50"] > 0.03 and last["val_map50"] > first["val_map50"]  # 0.054 measured; 0 at the start
