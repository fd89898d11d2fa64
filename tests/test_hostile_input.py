"""Careless and hostile input: refused in one sentence, contained in the chosen folder, nothing lost."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import time

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
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_sentence(code: int, err: str, *words: str) -> None:
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def tiny_run(tmp_path):
    code, _, err = run_cli("train", "simplenet_cifar_310k", *TINY, "--epochs", "1", "--project", str(tmp_path / "p"))
    assert code == 0, err
    return tmp_path / "p" / "classify" / "simplenet_cifar_310k"


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


def test_a_missing_optional_package_is_named_with_its_install_command(tmp_path, monkeypatch):
    from convforge.cli import error_sentence

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ModuleNotFoundError) as caught:
        import onnxscript  # noqa: F401
    assert error_sentence(caught.value) == ("this needs the onnxscript package, which is not installed "
                                            "(pip install onnxscript)")  # fmt: skip


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


def run_capped(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """``convforge ARGS`` as a program under a 6 GiB address-space cap (resnet20's profile needs about 4)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    return subprocess.run([sys.executable, "-m", "convforge", *args], capture_output=True, text=True, timeout=120,
                          preexec_fn=cap, cwd=cwd, check=False)  # fmt: skip


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


@pytest.mark.parametrize("case", ["aliases", "repeats", "input", "pixels"])
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
    else:
        (tmp_path / "huge.png").write_bytes(png_header(20000, 20000))
        args = ["predict", str(tiny_run), str(tmp_path / "huge.png")]
    before = snapshot(tmp_path)
    start = time.time()
    done = run_capped(*args)
    words = {"aliases": "aliases", "repeats": "1000000000", "input": "3x100000x100000", "pixels": "20000×20000"}
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
