"""Distillation losses: Hinton's logit loss for classifiers, and output matching for image-to-image models."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hinton_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0
) -> torch.Tensor:
    """T² · KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the batch (Hinton et al., 2015).

    The T² factor keeps the gradients' size independent of the temperature, so the loss mixes
    with the cross-entropy at a fixed weight.
    """
    t = float(temperature)
    log_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * t * t


def output_distillation_loss(student_output: torch.Tensor, teacher_output: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between the student's and the teacher's outputs (e.g. super-resolved images)."""
    return F.l1_loss(student_output.float(), teacher_output.float())
