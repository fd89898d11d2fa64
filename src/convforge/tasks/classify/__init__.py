"""Image classification: cross-entropy training, top-1/top-5 evaluation, top-k prediction."""

from convforge.tasks.classify.predict import prepare_image, top_classes
from convforge.tasks.classify.task import ClassificationTask, ClassifySettings, topk_correct

__all__ = ["ClassificationTask", "ClassifySettings", "prepare_image", "top_classes", "topk_correct"]
