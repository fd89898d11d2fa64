"""Careless and hostile input: refused in one sentence, contained in the chosen folder, nothing lost."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import convforge
from convforge.cli import main
from convforge.runs.run_lock import RunLock

TINY = ["--set", "width=0.25", "--data", "fashion-mnist", "--train-subset", "256", "--val-subset", "128",
        "--batch", "128", "--quiet"]  # fmt: skip


def run_cli(*args: str) -> tuple[int, str, str]:
    """``convforge ARGS`` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (a run's lock file, which names its last holder, aside)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}  # fmt: skip


def assert_one_sentence(code: int, err: str, *words: str) -> None:
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def _trained_once(tmp_path_factory):
    project = tmp_path_factory.mktemp("trained-once")
    code, _, err = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--project", str(project))
    assert code == 0, err
    return project / "classify" / "simplenet_cifar_310k"


def own_copy(run, tmp_path, task: str):
    """A copy of a run trained once for the module, as ``<tmp_path>/p/<task>/<name>``, for a test to spoil."""
    import shutil

    return Path(shutil.copytree(run, tmp_path / "p" / task / run.name))


@pytest.fixture
def tiny_run(_trained_once, tmp_path):
    """A one-epoch classifier run of this test's own."""
    return own_copy(_trained_once, tmp_path, "classify")


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped-absolute", "a/b", "..", ""])
def test_a_run_name_with_folders_is_refused_and_nothing_is_written_outside_the_project(tmp_path, name):
    project = tmp_path / "project"
    project.mkdir()
    before = snapshot(tmp_path)
    code, _, err = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--project", str(project),
                           "--name", name)  # fmt: skip
    assert_one_sentence(code, err, "name", "plain name")
    assert snapshot(tmp_path) == before and not (tmp_path.parent / "escaped").exists()
    assert not os.path.exists("/tmp/escaped-absolute")


def test_a_search_space_named_with_folders_is_refused(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: ../../../escaped\nin_channels: 1\nnum_classes: 10\ninput_size: [1, 28, 28]\nstem: [8]\n"
                     "stages:\n  - {width: [8], depth: [1]}\n")  # fmt: skip
    project = tmp_path / "project"
    code, _, err = run_cli("search", str(space), "--data", "fashion-mnist", "--trials", "1", "--project",
                           str(project))  # fmt: skip
    assert_one_sentence(code, err, "plain name")
    assert not (tmp_path.parent.parent / "escaped").exists() and not project.exists()


def test_two_resumes_of_one_run_directory_train_one_at_a_time(tiny_run):
    first = subprocess.Popen([sys.executable, "-m", "convforge", "train", "--resume", str(tiny_run), "--epochs",
                              "200", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.time() + 120
        while RunLock(tiny_run).holder().get("pid") != first.pid:  # the first has the run
            assert first.poll() is None, first.stderr.read().decode()
            assert time.time() < deadline, "the first resume never took the run"
            time.sleep(0.1)
        before = snapshot(tiny_run / "checkpoints")
        code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", "200", "--quiet")
        assert_one_sentence(code, err, "is in use by process", str(first.pid))
        assert first.poll() is None  # the first goes on training
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert snapshot(tiny_run / "checkpoints").keys() >= before.keys()
    # the killed process held the lock only while it lived: resuming now works
    code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")
    assert code == 0, err
    assert convforge.evaluate(tiny_run)["count"] == 10000


def test_a_project_that_cannot_be_written_is_one_sentence_and_debug_shows_the_traceback(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    args = ["train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--project", str(blocker / "runs")]
    code, _, err = run_cli(*args)
    assert_one_sentence(code, err, str(blocker), "--debug")
    assert blocker.read_text() == "a file where a folder should be"
    with pytest.raises(OSError):
        main(["--debug", *args])


def test_another_models_weights_are_one_sentence_naming_the_tensors_and_the_model(tiny_run, tmp_path):
    from convforge.runs.checkpoint import load_checkpoint, save_checkpoint

    other = tmp_path / "other"
    code, _, err = run_cli("train", "resnet20", *TINY, "--epochs", "1", "--project", str(other))
    assert code == 0, err
    foreign = load_checkpoint(other / "classify" / "resnet20" / "checkpoints" / "best.safetensors")
    target = tiny_run / "checkpoints" / "best"
    meta = load_checkpoint(target).meta
    save_checkpoint(target, foreign.tensors["model"], meta)  # resnet20's weights under simplenet's record
    before = snapshot(tiny_run)
    code, _, err = run_cli("eval", str(tiny_run))
    assert_one_sentence(code, err, "do not fit the model", "simplenet_cifar_310k", "missing:", "unexpected:")
    assert snapshot(tiny_run) == before


def test_non_finite_weights_are_refused_at_load_naming_the_tensor(tiny_run):
    from convforge.runs.checkpoint import load_checkpoint, save_checkpoint

    target = tiny_run / "checkpoints" / "best"
    ckpt = load_checkpoint(target)
    weights = dict(ckpt.tensors["model"])
    name = next(k for k, t in weights.items() if t.is_floating_point())
    weights[name] = weights[name].clone().fill_(float("nan"))
    save_checkpoint(target, weights, ckpt.meta)
    code, _, err = run_cli("eval", str(tiny_run))
    assert_one_sentence(code, err, "non-finite", name)


CAP_BYTES = 6 * 2**30  # the address space a capped case may use; resnet20's profile needs about 4 GiB
_SERVER = """
import contextlib, io, json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
from convforge.cli import main
for line in sys.stdin:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(json.loads(line))
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:  # MemoryError included: the test sees the traceback and fails
            code, _ = 99, traceback.print_exc(file=err)
    print(json.dumps([code, err.getvalue()]), flush=True)
"""


class _CappedProgram:
    """One Python program under the address-space cap that runs ``convforge`` commands in turn, so that each
    capped case costs a command, not a torch import."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        import json
        import threading

        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-c", _SERVER.replace("CAP", str(CAP_BYTES))],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        process = self.process
        process.stdin.write(json.dumps(list(args)) + "\n")
        process.stdin.flush()
        timer = threading.Timer(120, process.kill)  # a case that hangs fails instead of stalling the suite
        timer.start()
        try:
            line = process.stdout.readline()
        finally:
            timer.cancel()
        if not line:  # killed by the timer, or by the kernel for memory
            self.process = None
            return subprocess.CompletedProcess(args, 137, "", "the capped program died (time or memory)")
        code, err = json.loads(line)
        return subprocess.CompletedProcess(args, code, "", err)

    def close(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


run_capped = _CappedProgram()


@pytest.fixture(scope="module", autouse=True)
def _close_capped_program():
    yield
    run_capped.close()


def run_memory_case(capped: bool, *args: str) -> tuple[int, str]:
    """``convforge ARGS``: exit status and stderr; a case that could exhaust memory runs as a program under the
    address-space cap, the others in this process."""
    if capped:
        done = run_capped(*args)
        return done.returncode, done.stderr
    code, _, err = run_cli(*args)
    return code, err


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a greyscale PNG of ``width``×``height``, with an empty image stream (a few dozen bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


BILLION_LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    + "layers: *i\n"
)


@pytest.mark.parametrize("case", ["aliases", "repeats", "input", "imgsz", "pixels"])
def test_a_few_bytes_cannot_exhaust_memory(case, tmp_path, tiny_run):
    spec = tmp_path / "net.yaml"
    if case == "aliases":
        spec.write_text(BILLION_LAUGHS)
        args = ["profile", str(spec)]
    elif case == "repeats":
        spec.write_text("in_channels: 3\nlayers:\n  - [-1, 1000000000, Conv, [16, 3]]\n")
        args = ["profile", str(spec)]
    elif case == "input":
        args = ["profile", "resnet20", "--input", "3x100000x100000"]
    elif case == "imgsz":
        args = ["train", "leyolo_nano", "--data", str(tmp_path / "coco.yaml"), "--image-size", "100000"]
    else:
        (tmp_path / "huge.png").write_bytes(png_header(20000, 20000))
        args = ["predict", str(tiny_run), str(tmp_path / "huge.png")]
    before = snapshot(tmp_path)
    start = time.time()
    done = run_capped(*args)
    words = {
        "aliases": "aliases",
        "repeats": "1000000000",
        "input": "3x100000x100000",
        "imgsz": "100000",
        "pixels": "20000×20000",
    }
    assert_one_sentence(done.returncode, done.stderr, words[case])
    assert time.time() - start < 60 and snapshot(tmp_path) == before


def cifar_folder(tmp_path, batch: object) -> str:
    """A CIFAR-10 folder whose every batch is ``batch`` (pickled), beside a real-looking meta file."""
    import pickle

    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))
    return str(tmp_path / "cifar")


class _HugeArray:
    """Pickles as numpy's array reconstruction asked for a terabyte."""

    def __reduce__(self):
        import numpy as np
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (10**12,), b"b")


def test_a_tiny_cifar_pickle_asking_for_a_huge_array_is_refused(tmp_path, tiny_run):
    root = cifar_folder(tmp_path, {"data": _HugeArray(), "labels": []})
    done = run_capped("eval", str(tiny_run), "--data", "cifar10", "--data-root", root)
    assert_one_sentence(done.returncode, done.stderr, "not a readable CIFAR batch", "shape")


def test_cifar_labels_out_of_range_are_one_sentence(tmp_path, tiny_run):
    import numpy as np

    root = cifar_folder(tmp_path, {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 99]})
    code, _, err = run_cli("eval", str(tiny_run), "--data", "cifar10", "--data-root", root)
    assert_one_sentence(code, err, "labels must be 0 to 9", "99")


def test_export_never_overwrites_a_checkpoint_or_a_foreign_file(tiny_run, tmp_path):
    before = snapshot(tiny_run)
    for target in (tiny_run / "checkpoints" / "best.safetensors", tiny_run / "config.yaml", tiny_run):
        code, _, err = run_cli("export", str(tiny_run), "--out", str(target))
        assert_one_sentence(code, err, str(target))
    assert snapshot(tiny_run) == before
    mine = tmp_path / "notes.onnx"
    mine.write_text("my notes")
    code, _, err = run_cli("export", str(tiny_run), "--out", str(mine))
    assert_one_sentence(code, err, "--overwrite")
    assert mine.read_text() == "my notes"
    assert run_cli("export", str(tiny_run), "--out", str(mine), "--overwrite")[0] == 0
    assert run_cli("export", str(tiny_run), "--out", str(mine))[0] == 0  # convforge's own export is replaced


def test_a_label_line_with_nan_is_refused_naming_file_and_line(tmp_path):
    from convforge.data.yolo_detection import read_labels
    from convforge.errors import ConvforgeError

    labels = tmp_path / "a.txt"
    labels.write_text("0 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n")
    with pytest.raises(ConvforgeError, match=r"a.txt:2: the values must be finite"):
        read_labels(labels, 80)


def test_temporary_files_a_killed_write_left_are_removed_by_the_next_write(tmp_path):
    from convforge.atomic import STALE_S, write_text_atomic

    stale, fresh = tmp_path / ".metrics.csv.abc123.tmp", tmp_path / ".metrics.csv.def456.tmp"
    other = tmp_path / ".config.yaml.xyz.tmp"
    for leftover in (stale, fresh, other):
        leftover.write_text("half a file")
    old = time.time() - STALE_S - 5
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_text_atomic(tmp_path / "metrics.csv", "epoch\n1\n")
    assert not stale.exists()
    assert fresh.exists() and other.exists()  # another write may still be at work; another file's are its own


@pytest.mark.slow
def test_a_run_killed_at_random_moments_always_keeps_a_loadable_checkpoint_and_resumes(tiny_run):
    import random

    from convforge.runs.checkpoint import load_checkpoint

    rng = random.Random(0)
    epochs_seen = []
    for _ in range(8):
        command = [sys.executable, "-m", "convforge", "train", "--resume", str(tiny_run), "--epochs", "1000", "--quiet"]
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while RunLock(tiny_run).holder().get("pid") != worker.pid:  # training has begun
            assert worker.poll() is None and time.time() < deadline
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 3.0))  # somewhere in an epoch, or in a checkpoint's write
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        epochs_seen.append(load_checkpoint(tiny_run / "checkpoints" / "last").epoch)  # still whole
        assert load_checkpoint(tiny_run / "checkpoints" / "best").epoch >= 1
    assert epochs_seen == sorted(epochs_seen) and epochs_seen[-1] > epochs_seen[0]  # each resume went on
    code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", str(epochs_seen[-1] + 1), "--quiet")
    assert code == 0, err
    assert load_checkpoint(tiny_run / "checkpoints" / "last").epoch == epochs_seen[-1] + 1


def test_resume_refuses_options_that_would_change_the_runs_recipe(tiny_run):
    before = snapshot(tiny_run)
    code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", "3", "--lr", "0.5", "--batch", "64")
    assert_one_sentence(code, err, "lr", "0.5", "batch_size", "may change only epochs")
    code, _, err = run_cli("train", "resnet20", "--resume", str(tiny_run))
    assert_one_sentence(code, err, "drop a model name")
    assert snapshot(tiny_run) == before
    assert run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")[0] == 0  # epochs may change


def write_png_file(path, channels: int = 1, size: int = 28):
    import torch
    from torchvision.io import write_png

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(torch.randint(0, 256, (channels, size, size), dtype=torch.uint8), str(path))
    return path


def edit_checkpoint_meta(checkpoint, **changes) -> None:
    """Rewrite a checkpoint with its metadata changed as a hostile sender might."""
    from convforge.runs.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(checkpoint)
    meta = {k: v for k, v in {**ckpt.meta, **changes}.items() if v is not None}
    save_checkpoint(checkpoint, ckpt.tensors["model"], meta)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"model": "SPEC", "spec": None}, ["does not hold the spec itself"]),
        ({"model": "timm:resnet18", "model_kwargs": {"checkpoint_path": "/etc/passwd"}}, ["checkpoint_path",
                                                                                          "read a file"]),
        ({"model_kwargs": {"num_classes": 1e9}}, ["num_classes=1000000000.0", "cannot be built"]),
        ({"model_kwargs": {"num_classes": 10**9}}, ["parameters, over the limit", "CONVFORGE_MAX_PARAMETERS"]),
        ({"model_kwargs": {"num_classes": 10, "pretrained_cfg_overlay": {"file": "/etc/passwd"}}}, ["a number"]),
        ({"model_kwargs": {"num_classes": 10, "colour": 3}}, ["colour", "cannot be built"]),
        ({"model": "os.system"}, ["unknown model 'os.system'"]),
    ],
    ids=["spec-path", "timm-checkpoint-path", "float-classes", "billion-classes", "nested", "unknown-kwarg",
         "unknown-name"],
)  # fmt: skip
def test_a_checkpoint_builds_only_registered_names_and_specs_it_holds(tiny_run, tmp_path, changes, words):
    spec = tmp_path / "elsewhere.yaml"
    spec.write_text(BILLION_LAUGHS)  # were the loader to read it, it would be refused for its aliases instead
    if changes.get("model") == "SPEC":
        changes = {**changes, "model": str(spec)}
    edit_checkpoint_meta(tiny_run / "checkpoints" / "best", **changes)
    before = snapshot(tmp_path)
    code, _, err = run_cli("eval", str(tiny_run))
    assert_one_sentence(code, err, "best.safetensors", *words)
    assert snapshot(tmp_path) == before


def test_a_spec_run_rebuilds_from_the_spec_it_keeps_not_from_the_file_it_names(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text("in_channels: 1\nnum_classes: 10\ninput_size: [1, 28, 28]\n"
                    "layers:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Classify, [10]]\n")  # fmt: skip
    code, _, err = run_cli("train", str(spec), *TINY[2:], "--epochs", "1", "--project", str(tmp_path / "p"))
    assert code == 0, err
    run = tmp_path / "p" / "classify" / "tiny"
    first = convforge.evaluate(run)
    spec.write_text(BILLION_LAUGHS)  # the file the run names is now hostile: the run never reads it again
    assert convforge.evaluate(run) == first
    spec.unlink()
    assert run_cli("train", "--resume", str(run), "--epochs", "2", "--quiet")[0] == 0


def test_resume_after_an_edited_configuration_is_one_sentence_and_keeps_the_run(tiny_run):
    import yaml

    config_file = tiny_run / "config.yaml"
    original = config_file.read_text()
    for edit, words in (
        (lambda c: c["model_kwargs"].update(num_classes=12), ["do not fit the model", "num_classes"]),
        (lambda c: c["recipe"].update(opt="adamw"), ["optimiser state", "does not fit"]),
    ):
        config = yaml.safe_load(original)
        edit(config)
        config_file.write_text(yaml.safe_dump(config))
        before = snapshot(tiny_run / "checkpoints")
        code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")
        assert_one_sentence(code, err, *words)
        assert snapshot(tiny_run / "checkpoints") == before
    config_file.write_text(original)
    assert run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")[0] == 0


def test_checkpoint_metadata_that_is_not_a_json_object_is_one_sentence(tiny_run):
    import torch
    from safetensors.torch import save_file

    target = tiny_run / "checkpoints" / "best.safetensors"
    save_file({"model.w": torch.zeros(1)}, str(target), metadata={"convforge": "[1, 2, 3]"})
    before = snapshot(tiny_run)
    code, _, err = run_cli("eval", str(tiny_run))
    assert_one_sentence(code, err, str(target), "not a JSON object")
    assert snapshot(tiny_run) == before


def test_resuming_from_a_checkpoint_with_nan_weights_refuses_and_names_the_tensor(tiny_run):
    from convforge.runs.checkpoint import load_checkpoint, save_checkpoint

    last = tiny_run / "checkpoints" / "last"
    ckpt = load_checkpoint(last)
    weights = dict(ckpt.tensors["model"])
    name = next(k for k, t in weights.items() if t.is_floating_point() and t.dim() > 1)
    weights[name] = weights[name].clone().fill_(float("nan"))
    save_checkpoint(last, weights, ckpt.meta)
    before = snapshot(tiny_run)
    code, _, err = run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")
    assert_one_sentence(code, err, "non-finite", name)
    assert "last good" not in err
    assert snapshot(tiny_run) == before


def test_a_full_disk_during_training_is_one_sentence_and_the_last_checkpoint_survives(tiny_run):
    import resource

    def small_files() -> None:  # writes beyond 64 KiB fail with EFBIG, as on a disk that has filled up
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    before = snapshot(tiny_run / "checkpoints")
    done = subprocess.run([sys.executable, "-m", "convforge", "train", "--resume", str(tiny_run), "--epochs", "2",
                           "--quiet"], capture_output=True, text=True, timeout=300, preexec_fn=small_files,
                          check=False)  # fmt: skip
    assert_one_sentence(done.returncode, done.stderr, "File too large", "--debug")
    assert snapshot(tiny_run / "checkpoints") == before
    assert not [p for p in tiny_run.rglob("*.tmp")]  # the half-written file is gone
    assert run_cli("train", "--resume", str(tiny_run), "--epochs", "2", "--quiet")[0] == 0


def test_a_read_only_output_folder_is_one_sentence(tiny_run, tmp_path):
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="convforge-readonly-"))  # readable by the unprivileged user below
    try:
        shared.chmod(0o755)
        run = shutil.copytree(tiny_run, shared / "run")
        image = write_png_file(shared / "shoe.png")
        assert run_cli("predict", str(run), str(image), "--out", str(tmp_path / "warm"))[0] == 0  # imports done
        locked = shared / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        root = os.geteuid() == 0
        if root:  # root writes anywhere: act as an unprivileged user, for whom 0555 holds
            os.seteuid(65534)
        try:
            code, _, err = run_cli("predict", str(run), str(image), "--out", str(locked))
            trained = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--project", str(locked))
        finally:
            if root:
                os.seteuid(0)
        assert_one_sentence(code, err, "Permission denied", str(locked))
        assert_one_sentence(trained[0], trained[2], "Permission denied", "--project")
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def image_folder(root, broken: bytes | None = None):
    """A 2-class ImageFolder of small RGB PNGs; with ``broken``, one more training file holding those bytes."""
    for split in ("train", "val"):
        for name in ("a", "b"):
            for i in range(4):
                write_png_file(root / split / name / f"{i}.png", channels=3, size=16)
    if broken is not None:
        (root / "train" / "a" / "broken.png").write_bytes(broken)
    return root


@pytest.mark.parametrize("case", ["truncated", "bomb"])
def test_a_broken_image_inside_an_image_folder_is_one_sentence_naming_it(tmp_path, case):
    whole = write_png_file(tmp_path / "whole.png", channels=3, size=64).read_bytes()
    broken = whole[: len(whole) // 2] if case == "truncated" else png_header(20000, 20000)
    root = image_folder(tmp_path / "folder", broken)
    before = snapshot(root)
    for workers in ("0", "1"):
        code, _, err = run_cli("train", "simplenet_cifar_310k", "--data", str(root), "--set", "width=0.25",
                               "--image-size", "32", "--batch", "4", "--workers", workers, "--epochs", "1",
                               "--project", str(tmp_path / "p"), "--quiet")  # fmt: skip
        assert_one_sentence(code, err, "broken.png", "truncated" if case == "truncated" else "20000×20000")
    assert snapshot(root) == before


def test_a_palette_image_is_read_in_its_colours_not_its_indices(tmp_path):
    import numpy as np
    from PIL import Image

    from convforge.data.image_file import read_image

    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "palette.png")
    read = read_image(tmp_path / "palette.png")
    assert read.shape == (3, 16, 16)
    assert np.array_equal(read.permute(1, 2, 0).numpy(), np.array(palette.convert("RGB")))


@pytest.fixture(scope="module")
def _sr_trained_once(tmp_path_factory, shared_data):
    project = tmp_path_factory.mktemp("sr-trained-once")
    code, _, err = run_cli("train", "sesr_m3", "--task", "sr", "--data", "set5", "--val-data", "set5", "--scale",
                           "2", "--epochs", "1", "--batch", "16", "--set", "expansion=16", "--data-root",
                           str(shared_data), "--project", str(project), "--quiet")  # fmt: skip
    assert code == 0, err
    return project / "sr" / "sesr_m3"


@pytest.fixture
def sr_run(_sr_trained_once, tmp_path):
    """A one-epoch super-resolution run of this test's own."""
    return own_copy(_sr_trained_once, tmp_path, "sr")


def test_predictions_never_overwrite_and_same_named_images_get_their_own_files(sr_run, tmp_path):
    one, two = write_png_file(tmp_path / "a" / "x.png"), write_png_file(tmp_path / "b" / "x.png")
    out = tmp_path / "out"
    code, _, err = run_cli("predict", str(sr_run), str(one), str(two), "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["x-2.png", "x.png"]  # both kept
    before = snapshot(out)
    code, _, err = run_cli("predict", str(sr_run), str(one), "--out", str(out))
    assert_one_sentence(code, err, str(out / "x.png"), "--overwrite")
    assert snapshot(out) == before
    assert run_cli("predict", str(sr_run), str(two), "--out", str(out), "--overwrite")[0] == 0
    # without --out, each prediction gets a fresh folder in the run
    for _ in range(2):
        assert run_cli("predict", str(sr_run), str(one))[0] == 0
    assert (sr_run / "predict" / "x.png").is_file() and (sr_run / "predict-2" / "x.png").is_file()
    checkpoints = snapshot(sr_run / "checkpoints")
    code, _, err = run_cli("predict", str(sr_run), str(one), "--out", str(sr_run / "checkpoints"), "--overwrite")
    assert_one_sentence(code, err, "where checkpoints live")
    assert snapshot(sr_run / "checkpoints") == checkpoints


def test_upscale_never_overwrites_without_being_asked_and_never_a_checkpoint(sr_run, tmp_path):
    image = write_png_file(tmp_path / "in.png", channels=3)
    target = tmp_path / "big.png"
    target.write_bytes(b"my own picture")
    code, _, err = run_cli("upscale", str(sr_run), str(image), str(target))
    assert_one_sentence(code, err, str(target), "--overwrite")
    assert target.read_bytes() == b"my own picture"
    assert run_cli("upscale", str(sr_run), str(image), str(target), "--overwrite")[0] == 0
    checkpoints = snapshot(sr_run / "checkpoints")
    code, _, err = run_cli("upscale", str(sr_run), str(image), str(sr_run / "checkpoints" / "best.png"),
                           "--overwrite")  # fmt: skip
    assert_one_sentence(code, err, "where checkpoints live")
    assert snapshot(sr_run / "checkpoints") == checkpoints


def test_export_without_the_onnx_package_names_the_install_command(tiny_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    monkeypatch.setitem(sys.modules, "onnx", None)
    before = snapshot(tiny_run)
    code, _, err = run_cli("export", str(tiny_run))
    assert_one_sentence(code, err, "not installed", "pip install")
    assert snapshot(tiny_run) == before


def test_outputs_never_replace_a_device_a_pipe_or_a_runs_own_files(tiny_run, tmp_path):
    pipe = tmp_path / "pipe.onnx"
    os.mkfifo(pipe)
    code, _, err = run_cli("export", str(tiny_run), "--out", str(pipe), "--overwrite")
    assert_one_sentence(code, err, "not a regular file")
    assert pipe.is_fifo()
    before = snapshot(tiny_run)
    code, _, err = run_cli("export", str(tiny_run), "--out", str(tiny_run / "config.yaml"), "--overwrite")
    assert_one_sentence(code, err, "part of the run")
    notes = tmp_path / "notes.png"
    notes.write_text("my notes, named .png")
    code, _, err = run_cli("profile", "resnet20", "--plot", str(notes))
    assert_one_sentence(code, err, "not a PNG picture")
    assert snapshot(tiny_run) == before and notes.read_text() == "my notes, named .png"


@pytest.mark.parametrize("project", ["/tmp/escaped-by-recipe", "../escaped-by-recipe"])
def test_a_recipe_file_cannot_send_a_run_outside_the_current_folder(tmp_path, monkeypatch, project):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.yaml").write_text(f"project: {project}\n")
    code, _, err = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--recipe", "recipe.yaml")
    assert_one_sentence(code, err, "recipe.yaml", "--project")
    assert not Path("/tmp/escaped-by-recipe").exists() and not (tmp_path.parent / "escaped-by-recipe").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, ["not UTF-8"]),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", ["too deeply"]),
        ("in_channels: 3\ndivisor: 0\nlayers:\n  - [-1, 1, Conv, [16, 3, 1]]\n", ["divisor = 0"]),
        ("in_channels: 3\nwidth: -1\nlayers:\n  - [-1, 1, Conv, [16, 3, 1]]\n", ["width = -1"]),
        ("in_channels: 3\ninput_size: [1, 100000, 100000]\nlayers:\n  - [-1, 1, Conv, [16, 3, 1]]\n",
         ["input_size"]),
        ("in_channels: 3\nlayers:\n  - [-1, 1, Conv, [-16, 3, 1]]\n", ["row 0 (args)", "-16 output channels"]),
        ("in_channels: 3\nlayers:\n  - [-1, 1, Conv, [16, 0, 2]]\n", ["row 0 (args)", "empty weight"]),
        ("in_channels: 3\nlayers:\n" + "  - [-1, 1000, Conv, [16, 3, 1]]\n" * 1000, ["1,000,000 blocks"]),
    ],
    ids=["binary", "deep", "divisor", "width", "input-size", "negative-channels", "zero-kernel", "many-blocks"],
)  # fmt: skip
def test_a_spec_out_of_range_is_one_sentence_before_anything_is_built(tmp_path, request, text, words):
    spec = tmp_path / "net.yaml"
    spec.write_bytes(bytes(range(128, 256)) * 8 if text is None else text.encode())
    code, err = run_memory_case(request.node.callspec.id in ("input-size", "many-blocks"), "profile", str(spec))
    assert_one_sentence(code, err, *words)


@pytest.mark.parametrize("args", [["simplenet_cifar_310k", "--set", "width=60"],
                                  ["resnet20", "--set", "num_classes=1000000000"]])  # fmt: skip
def test_settings_that_would_build_a_huge_registered_model_are_refused_before_building(args):
    done = run_capped("profile", *args)
    assert_one_sentence(done.returncode, done.stderr, "over the limit", "CONVFORGE_MAX_PARAMETERS")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"input_size": [1, 100000, 100000]}, ["input size"]),
        ({"input_size": "x"}, ["input size"]),
        ({"mean": []}, ["normalisation"]),
        ({"std": [0.0]}, ["normalisation"]),
        ({"mean": [float("nan")]}, ["normalisation"]),
        ({"classes": "abc"}, ["class names"]),
        ({"recipe": {"task": "teleport"}}, ["the task 'teleport'"]),
    ],
    ids=["huge-input", "text-input", "no-mean", "zero-std", "nan-mean", "text-classes", "unknown-task"],
)  # fmt: skip
def test_a_checkpoints_record_is_checked_before_inference_reads_it(tiny_run, tmp_path, request, changes, words):
    edit_checkpoint_meta(tiny_run / "checkpoints" / "best", **changes)
    image = write_png_file(tmp_path / "shoe.png")
    code, err = run_memory_case(request.node.callspec.id == "huge-input", "predict", str(tiny_run), str(image))
    assert_one_sentence(code, err, "best.safetensors", *words)


def test_a_class_count_below_the_datas_is_refused_before_training(tmp_path):
    code, _, err = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--set", "num_classes=3",
                           "--project", str(tmp_path))  # fmt: skip
    assert_one_sentence(code, err, "num_classes=3", "at least 10")


def test_an_image_named_twice_is_predicted_once_and_kept(sr_run, tmp_path):
    image = write_png_file(tmp_path / "x.png")
    out = tmp_path / "out"
    code, _, err = run_cli("predict", str(sr_run), str(image), str(image), str(tmp_path / "." / "x.png"), "--out",
                           str(out))  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["x.png"]


def test_quantize_takes_a_run_named_relative_to_the_current_folder(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run.parent)
    code, _, err = run_cli("quantize", tiny_run.name, "--calib", "16", "--no-eval", "--no-latency", "--quiet")
    assert code == 0, err
    assert (tiny_run / "model.int8.onnx").is_file()


@pytest.mark.parametrize(
    ("record", "rebuilt"),
    [
        ({"model": "timm:resnet18", "model_kwargs": {"num_classes": 10, "drop_path_rate": 0.05}},
         {"num_classes": 10, "drop_path_rate": 0.05}),
        ({"model": "timm:resnet18", "model_kwargs": {"num_classes": 10, "pretrained": True}},
         {"num_classes": 10, "pretrained": False}),
        ({"model": "torchvision:resnet18", "model_kwargs": {"weights": "DEFAULT"}}, {"weights": None}),
    ],
    ids=["drop-path", "pretrained", "torchvision-weights"],
)  # fmt: skip
def test_ordinary_settings_in_a_record_rebuild_without_fetching_anything(record, rebuilt):
    from convforge.runs.recorded_model import recorded_origin

    assert recorded_origin(record, "a checkpoint").model_kwargs == rebuilt


def test_a_spec_run_resumed_with_its_module_keeps_recording_the_spec(tmp_path):
    from convforge.runs.checkpoint import load_checkpoint

    spec = tmp_path / "tiny.yaml"
    spec.write_text("in_channels: 1\nnum_classes: 10\ninput_size: [1, 28, 28]\n"
                    "layers:\n  - [-1, 1, Conv, [8, 3, 2]]\n  - [-1, 1, Classify, [10]]\n")  # fmt: skip
    first = convforge.train(str(spec), "fashion-mnist", epochs=1, train_subset=256, val_subset=128,
                            project=str(tmp_path / "p"), progress=False)  # fmt: skip
    module = convforge.create_model(str(spec), in_chans=1)
    convforge.train(module, resume=first.run_dir, epochs=2, progress=False)
    assert load_checkpoint(first.run_dir / "checkpoints" / "last").meta["spec"]["layers"][0][2] == "Conv"
    spec.unlink()
    assert convforge.evaluate(first.run_dir)["count"] == 10000
