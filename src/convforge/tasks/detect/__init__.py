"""Object detection on YOLO-format data: the LeYOLO/YOLOv8 loss, COCO mAP, and drawn detections."""

from convforge.tasks.detect.predict import Detection, detect, draw_detections
from convforge.tasks.detect.task import DetectionTask, DetectSettings, find_head

__all__ = ["DetectSettings", "Detection", "DetectionTask", "detect", "draw_detections", "find_head"]
