import gzip
import pickle

import pytest
import torch

from convforge.data import Augment, TensorLoader, load_dataset
from convforge.data.idx import read_idx
from convforge.errors import ConvforgeError

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="module")
def fashion():
    return load_dataset("fashion-mnist", "train")


def test_mnist_reads_the_gzipped_idx_files(shared_data):
    train = load_dataset("mnist", "train", root=shared_data)
    test = load_dataset("mnist", "test", root=shared_data)
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert len(test) == 10_000 and train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert train.mean[0] == pytest.approx(0.1307, abs=1e-4) and train.std[0] == pytest.approx(0.3081, abs=1e-4)
    assert test.mean == train.mean  # the test split is normalised with training statistics


def test_fashion_mnist_comes_from_the_debian_package_location(fashion):
    assert fashion.source == FASHION_MNIST
    assert fashion.images.shape == (60_000, 1, 28, 28)
    assert fashion.classes[9] == "Ankle boot"
    assert torch.bincount(fashion.labels).tolist() == [6000] * 10


@pytest.mark.slow  # over 8 s; run by make test-all
def test_cifar10_reads_python_batches_from_the_xz_archive_despite_md5(shared_data):
    train = load_dataset("cifar10", "train", root=shared_data / "cifar10")
    test = load_dataset("cifar10", "test", root=shared_data / "cifar10")
    assert train.images.shape == (50_000, 3, 32, 32) and len(test) == 10_000
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    assert train.classes[0] == "airplane"
    assert train.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-4)


def test_digits_come_from_scikit_learn_with_a_fixed_split():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert torch.equal(load_dataset("digits", "test").labels, test.labels)


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(ConvforgeError) as caught:
        load_dataset("cifar100", root=tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and "cifar-100-python" in message and "--data-root" in message


def test_unknown_dataset_lists_the_known_names():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_dataset("imagenet-21k")


def test_truncated_idx_file_is_a_clear_error(tmp_path, shared_data):
    data = gzip.open(shared_data / "mnist/MNIST/raw/t10k-labels-idx1-ubyte.gz").read()
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(gzip.compress(data[:1000]))
    with pytest.raises(ConvforgeError, match="truncated"):
        read_idx(broken)


def test_cifar_batches_with_foreign_objects_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(pickle.dumps({"data": Payload()}))
    with pytest.raises(ConvforgeError, match="refusing to load builtins.print"):
        load_dataset("cifar10", root=tmp_path)


def test_loader_is_repeatable_per_epoch_and_differs_between_epochs(fashion):
    small = fashion.subset(512)
    loader = TensorLoader(small, 128, train=True, augment=Augment(2, True, 4), seed=3)
    loader.set_epoch(1)
    first = [x for x, _ in loader]
    loader.set_epoch(1)
    again = [x for x, _ in loader]
    loader.set_epoch(2)
    other = [x for x, _ in loader]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_loader_normalises_and_keeps_evaluation_order(fashion):
    loader = TensorLoader(fashion, 1000, train=False)
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and abs(x.mean().item()) < 0.1
    assert torch.equal(y, fashion.labels[:1000])
    assert len(loader) == 60 and loader.num_examples == 60_000


def test_ranks_see_disjoint_shards_that_cover_every_example(fashion):
    small = fashion.subset(1000)
    everything = next(iter(TensorLoader(small, 1000, train=False)))[0]
    index_of = {row.numpy().tobytes(): i for i, row in enumerate(everything.flatten(1))}
    assert len(index_of) == 1000  # every example is recognisable by its pixels
    shards = []
    for rank in range(2):
        loader = TensorLoader(small, 100, train=True, seed=1, rank=rank, world_size=2)
        seen = [index_of[row.numpy().tobytes()] for x, _ in loader for row in x.flatten(1)]
        assert loader.num_examples == 500 and len(seen) == len(set(seen)) == 500
        shards.append(set(seen))
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(1000))


def test_translation_shifts_each_image_by_at_most_the_padding():
    from convforge.data.tensor_loader import random_translate

    x = torch.arange(16 * 1 * 6 * 6, dtype=torch.float32).reshape(16, 1, 6, 6)
    shifted = random_translate(x, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="reflect")
    offsets = []
    for image, source in zip(shifted, padded):
        found = [
            (dy, dx) for dy in range(5) for dx in range(5) if torch.equal(image, source[:, dy : dy + 6, dx : dx + 6])
        ]
        assert found, "every image is a window of its reflect-padded self"
        offsets.append(found[0])
    assert len(set(offsets)) > 1 and any(o != (2, 2) for o in offsets)  # the images really move, and not alike


def test_flips_mirror_some_images_and_keep_the_others():
    from convforge.data.tensor_loader import random_flip

    x = torch.randn(32, 1, 5, 5)
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    mirrored = [torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x)]
    kept = [torch.equal(f, o) for f, o in zip(flipped, x)]
    assert all(m != k for m, k in zip(mirrored, kept))  # each image is either mirrored or untouched
    assert 0 < sum(mirrored) < 32


def test_cutout_zeroes_one_square_per_image():
    from convforge.data.tensor_loader import random_cutout

    cut = random_cutout(torch.ones(4, 1, 9, 9), 3, torch.Generator().manual_seed(2))
    assert ((cut == 0).flatten(1).sum(1) >= 4).all()  # a clipped 3×3 square at least
    assert ((cut == 0).flatten(1).sum(1) <= 9).all()


def test_translation_larger_than_the_image_is_refused():
    from convforge.data.tensor_loader import random_translate

    with pytest.raises(ValueError, match="crop_padding must be smaller"):
        random_translate(torch.ones(2, 1, 8, 8), 8, torch.Generator())
