import gzip
import urllib.error

import pytest
import torch

import gns_env.data.fashion_mnist as fm
from gns_env.data import DatasetError, load_fashion_mnist, make_synthetic_images


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GNS_DATA_DIR", raising=False)
    fm._load_fashion_mnist.cache_clear()
    yield
    fm._load_fashion_mnist.cache_clear()


@pytest.fixture
def offline(monkeypatch):
    """torchvision's download fails the way it does without internet."""
    original = fm.FashionMNIST

    def no_download(root, train=True, download=False):
        if download:
            raise urllib.error.URLError("network unreachable")
        return original(root, train=train, download=False)

    monkeypatch.setattr(fm, "FashionMNIST", no_download)


def test_missing_dataset_offline_says_how_to_get_it(tmp_path, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as err:
        load_fashion_mnist("train", data_dir=str(empty))
    message = str(err.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "GNS_DATA_DIR" in message
    assert "empty" in message and "URLError" in message


def test_a_mistyped_data_dir_is_reported_and_never_created(tmp_path, offline):
    with pytest.raises(DatasetError, match="nowhere does not exist.*apt-get install"):
        load_fashion_mnist("train", data_dir=str(tmp_path / "nowhere"))
    assert not (tmp_path / "nowhere").exists()


def test_truncated_file_is_a_clear_error(tmp_path, offline):
    for names in fm.FILES.values():
        for name in names:
            with gzip.open(tmp_path / f"{name}.gz", "wb") as handle:
                handle.write(b"\x00\x00\x08\x03" + b"\x00" * 10)  # IDX header cut short
    with pytest.raises(DatasetError, match="could not be read|unreadable"):
        load_fashion_mnist("train", data_dir=str(tmp_path))


def test_corrupt_gzip_is_a_clear_error(tmp_path, offline):
    for names in fm.FILES.values():
        for name in names:
            (tmp_path / f"{name}.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="unreadable or truncated"):
        load_fashion_mnist("test", data_dir=str(tmp_path))


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation")


def test_real_fashion_mnist_from_the_system_copy(fashion_mnist, monkeypatch):
    train = fashion_mnist
    images, labels = train.tensors
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = load_fashion_mnist("test").tensors
    assert test_images.shape == (10000, 1, 28, 28)


def test_gns_data_dir_is_used(fashion_mnist, monkeypatch, tmp_path, offline):
    monkeypatch.setenv("GNS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="empty"):
        load_fashion_mnist("train")


def test_synthetic_splits_share_the_classes():
    train = make_synthetic_images(400, num_classes=4, image_size=8, seed=0)
    test = make_synthetic_images(400, num_classes=4, image_size=8, seed=1)
    assert not torch.equal(train.tensors[0], test.tensors[0])
    for c in range(4):  # the class means agree: same prototypes, different noise
        mean_train = train.tensors[0][train.tensors[1] == c].mean(0)
        mean_test = test.tensors[0][test.tensors[1] == c].mean(0)
        assert torch.sign(mean_train).eq(torch.sign(mean_test)).float().mean() > 0.9


def test_a_changed_data_dir_variable_is_read_not_served_from_the_cache(tmp_path, monkeypatch, offline, fashion_mnist):
    assert len(load_fashion_mnist("train")) == 60000  # the real files, now cached
    monkeypatch.setenv("GNS_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetError, match="elsewhere does not exist"):
        load_fashion_mnist("train")
