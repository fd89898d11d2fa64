"""Knowledge distillation: Hinton's loss, output matching, and a teacher in the training loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import convforge
from convforge.compress import hinton_kd_loss, output_distillation_loss
from convforge.errors import ConvforgeError
from convforge.runs.run_dir import RunDir

FAST = dict(data="fashion-mnist", train_subset=512, val_subset=256, batch_size=64, progress=False)


def test_hinton_loss_equals_the_formula_on_hand_made_logits():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0], [0.0, -2.0, 4.0]])
    t = 3.0
    expected = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        ps = [math.exp(v / t) for v in s_row]
        pt = [math.exp(v / t) for v in t_row]
        ps = [p / sum(ps) for p in ps]
        pt = [p / sum(pt) for p in pt]
        expected += sum(q * (math.log(q) - math.log(p)) for p, q in zip(ps, pt))
    expected = expected / 2 * t * t
    assert hinton_kd_loss(student, teacher, t).item() == pytest.approx(expected, rel=1e-6)
    assert hinton_kd_loss(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-7)


def test_output_distillation_is_the_mean_absolute_difference():
    a, b = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert output_distillation_loss(a, b).item() == pytest.approx(1.0)


def _kl_to_teacher(student, teacher, images) -> float:
    with torch.no_grad():
        return F.kl_div(F.log_softmax(student.eval()(images), 1), F.log_softmax(teacher.eval()(images), 1),
                        reduction="batchmean", log_target=True).item()  # fmt: skip


def test_training_with_a_teacher_moves_the_student_towards_it_and_reports_its_time(tmp_path):
    from convforge.data import load_dataset

    torch.manual_seed(0)
    teacher = convforge.create_model("simplenet_cifar_310k", width=0.25, num_classes=10, in_chans=1)
    student = convforge.create_model("resnet20", num_classes=10, in_chans=1)
    images = load_dataset("fashion-mnist", "test").subset(256, seed=1).images.float().div(255)
    images = (images - images.mean()) / images.std()
    before = _kl_to_teacher(student, teacher, images)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = convforge.train(student, teacher=teacher, kd_alpha=1.0, epochs=2, lr=0.05, project=str(tmp_path),
                             **FAST)  # fmt: skip
    after = _kl_to_teacher(result.model, teacher, images)
    assert after < 0.5 * before
    assert all(row["teacher_time_s"] > 0 for row in result.metrics)
    # the teacher learns nothing, BatchNorm statistics included
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())
    assert RunDir(result.run_dir).read_config()["teacher"].startswith("<")
    with pytest.raises(ConvforgeError, match="pass it again"):
        convforge.train(result.model, resume=result.run_dir, epochs=3, progress=False)


def test_a_teacher_whose_outputs_differ_is_refused_before_training_naming_both_shapes(tmp_path):
    teacher = convforge.create_model("resnet20", num_classes=5, in_chans=1)
    with pytest.raises(ConvforgeError, match=r"\(2, 5\).*\(2, 10\)"):
        convforge.train("resnet20", teacher=teacher, epochs=1, project=str(tmp_path), **FAST)


@pytest.mark.parametrize(("field", "value"), [("kd_alpha", 1.5), ("kd_temperature", 0)])
def test_bad_distillation_settings_are_refused_by_name(tmp_path, field, value):
    with pytest.raises(ConvforgeError, match=field):
        convforge.train("resnet20", epochs=1, project=str(tmp_path), **{field: value}, **FAST)
