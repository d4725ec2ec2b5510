"""CIFAR-10/100 and ImageNet envs: paper presets on fabricated files in torchvision's formats,
lite presets on the real CIFAR-10 JPEGs ($GNS_CIFAR10_DIR, else ../shared/data/cifar10)."""

import hashlib
import os
import pickle
import time
import urllib.error
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar
from gymnasium.utils.env_checker import check_env
from PIL import Image

import gns_env.data.image_folder as image_folder
from gns_env.data import DatasetError, load_cifar, load_imagenet
from gns_env.tasks import PRESETS

PAPER_IDS = ("GNS/CIFAR10-ResNet34-v0", "GNS/CIFAR100-ResNet34-v0", "GNS/CIFAR10-VGG16-v0")
LITE_IDS = ("GNS/CIFAR10-Lite-v0", "GNS/CIFAR10-VGGLite-v0")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# ResNet-34 at 32x32 is ~1.2 GMAC per image: a couple of steps on two images keeps a test at seconds.
TINY = dict(total_steps=2, decision_interval=1, batch_size=2, val_size=4, eval_batch_size=32)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """ResNet-34/VGG-16 on a CPU shared with other jobs: with more intra-op threads than free
    cores, every op waits for its slowest thread (here 2 threads ran these tests ~5x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- fabricated files -------------------------------------------------------------------------


def _pickle(path: Path, entry: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, name: str, train: int = 300, test: int = 20, seed: int = 0) -> dict:
    """Random images in torchvision's on-disk format of ``name`` under ``root``; returns the
    class attributes (file lists with their md5) torchvision must be given to accept them."""
    rng = np.random.default_rng(seed)
    classes = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"

    def batch(n):
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B
        return {"data": pixels, label_key: rng.integers(0, classes, n).tolist()}

    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        train_list = [[f"data_batch_{i}", _pickle(base / f"data_batch_{i}", batch(train // 5))] for i in range(1, 6)]
        test_list = [["test_batch", _pickle(base / "test_batch", batch(test))]]
        meta = {"filename": "batches.meta", "key": "label_names"}
        meta["md5"] = _pickle(base / meta["filename"], {"label_names": CIFAR10_CLASSES})
    else:
        base = root / "cifar-100-python"
        train_list = [["train", _pickle(base / "train", batch(train))]]
        test_list = [["test", _pickle(base / "test", batch(test))]]
        meta = {"filename": "meta", "key": "fine_label_names"}
        meta["md5"] = _pickle(base / "meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    return {"train_list": train_list, "test_list": test_list, "meta": meta}


def write_image_folder(root: Path, classes, per_class: int, size=(32, 32), seed: int = 0) -> None:
    """Random JPEGs ``size`` = (height, width) in ``root/<class>/NNNN.jpg``."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:04d}.jpg", quality=90)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A private cache folder, none of the data-folder variables, and torchvision offline."""
    monkeypatch.setenv("GNS_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("GNS_DATA_DIR", "GNS_CIFAR10_DIR", "GNS_IMAGENET_DIR"):
        monkeypatch.delenv(name, raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    return tmp_path


@pytest.fixture
def fabricated_cifar(isolated, monkeypatch) -> Path:
    """A folder with both CIFARs in torchvision's formats (300 train, 20 test images each)."""
    root = isolated / "cifar"
    for name, reader in (("cifar10", tv_cifar.CIFAR10), ("cifar100", tv_cifar.CIFAR100)):
        for attribute, value in write_cifar(root, name).items():
            monkeypatch.setattr(reader, attribute, value)
    return root


# --- paper presets on fabricated data ---------------------------------------------------------


@pytest.mark.parametrize("env_id", PAPER_IDS)
def test_paper_cifar_env_has_the_paper_settings_and_steps_on_fabricated_files(env_id, fabricated_cifar):
    spec = PRESETS[env_id]
    assert (spec.total_steps, spec.decision_interval, spec.batch_size, spec.val_size) == (62600, 500, 128, 10000)
    assert (spec.optimizer, spec.metric, spec.val_prob) == ("adam", "accuracy", 0.2)
    assert spec.initial_lr_range == (1e-3, 1e-1)  # Table 5, like the other image envs
    assert spec.num_classes == (100 if "CIFAR100" in env_id else 10)
    env = gym.make(env_id, data_dir=str(fabricated_cifar), **TINY)
    graph = env.unwrapped.graph
    assert graph.num_nodes <= spec.max_nodes == 256 and graph.num_edges <= spec.max_edges == 1024
    if "VGG" in env_id:  # 13 conv + 13 BN in five pooled stages, then the linear head
        assert (graph.num_nodes, graph.num_repeated_blocks) == (27, 5)
        assert graph.block_names[1:-1] == ["features.0", "features.7", "features.14", "features.24", "features.34"]
        assert graph.node_names[-1] == "classifier" and graph.blocks[-1] == 6
    else:  # ResNet-34: stem conv/BN, 16 BasicBlocks (3-4-6-3), fc
        assert (graph.num_nodes, graph.num_repeated_blocks) == (73, 16)
    images = env.unwrapped._pool.tensors[0]
    assert images.shape == (300, 3, 32, 32) and images.dtype == torch.float32  # normalised
    observation, info = env.reset(seed=0)
    assert 1e-3 <= info["lr"] <= 1e-1 and env.observation_space.contains(observation)
    _, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
    assert terminated and info["validated"] and np.isfinite(reward)
    assert 0.0 <= env.unwrapped.evaluate_test() <= 1.0
    env.close()


def test_cifar_loaders_read_torchvision_files(fabricated_cifar):
    train = load_cifar("cifar10", "train", str(fabricated_cifar))
    images, labels = train.tensors
    assert images.shape == (300, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    raw = pickle.loads((fabricated_cifar / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert torch.equal(images[0].flatten(), torch.from_numpy(raw["data"][0]))  # CHW, like the pickle rows
    assert labels[:60].tolist() == raw["labels"]
    # the batches folder itself is accepted too
    assert torch.equal(load_cifar("cifar10", "test", str(fabricated_cifar / "cifar-10-batches-py")).tensors[0][:5],
                       load_cifar("cifar10", "test", str(fabricated_cifar)).tensors[0][:5])  # fmt: skip
    fine = load_cifar("cifar100", "test", str(fabricated_cifar)).tensors[1]
    raw = pickle.loads((fabricated_cifar / "cifar-100-python" / "test").read_bytes())
    assert fine.tolist() == raw["fine_labels"]


def test_gns_data_dir_is_the_shared_torchvision_root(fabricated_cifar, monkeypatch):
    monkeypatch.setenv("GNS_DATA_DIR", str(fabricated_cifar))
    assert len(load_cifar("cifar100", "train")) == 300


def test_a_corrupted_cifar_file_is_a_clear_error(fabricated_cifar):
    (fabricated_cifar / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(DatasetError, match="md5.*GNS_CIFAR10_DIR"):
        load_cifar("cifar10", "train", str(fabricated_cifar))


def test_missing_cifar_offline_names_every_setting(isolated):
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as err:
        gym.make("GNS/CIFAR10-Lite-v0", data_dir=str(empty))
    message = str(err.value)
    assert "data_dir" in message and "GNS_CIFAR10_DIR" in message and "URLError" in message and str(empty) in message
    with pytest.raises(DatasetError, match=r"CIFAR-100 not found in .*cache.*URLError.*data_dir"):
        load_cifar("cifar100", "train")


def test_a_mistyped_cifar_folder_names_its_setting_and_is_never_created(isolated, monkeypatch):
    monkeypatch.setenv("GNS_CIFAR10_DIR", str(isolated / "nowhere"))
    with pytest.raises(DatasetError, match=r"nowhere \(from \$GNS_CIFAR10_DIR\) does not exist"):
        load_cifar("cifar10", "train")
    assert not (isolated / "nowhere").exists()


def test_cifar_image_folder_copies_are_checked(isolated):
    root = isolated / "jpegs"
    write_image_folder(root / "train", CIFAR10_CLASSES[:9], 2)
    with pytest.raises(DatasetError, match="9 class folders, expected 10"):
        load_cifar("cifar10", "train", str(root))
    write_image_folder(root / "train", CIFAR10_CLASSES[9:], 2)
    write_image_folder(root / "test", CIFAR10_CLASSES, 1, size=(32, 40))
    assert len(load_cifar("cifar10", "train", str(root))) == 20
    with pytest.raises(DatasetError, match=r"0000.jpg is 40x32, expected 32x32"):
        load_cifar("cifar10", "test", str(root))


def test_decoded_images_are_cached_and_refreshed_when_a_file_changes(isolated, monkeypatch):
    root = isolated / "jpegs"
    write_image_folder(root / "train", CIFAR10_CLASSES, 3)
    calls = []
    decode = image_folder._decode
    monkeypatch.setattr(image_folder, "_decode", lambda *args: calls.append(args[0]) or decode(*args))
    first = load_cifar("cifar10", "train", str(root))
    assert len(calls) == 30
    second = load_cifar("cifar10", "train", str(root))
    assert len(calls) == 30 and torch.equal(first.tensors[0], second.tensors[0])
    write_image_folder(root / "train", ["cat"], 4, seed=1)  # rewrites cat/0000-0002, adds cat/0003
    assert len(load_cifar("cifar10", "train", str(root))) == 31 and len(calls) == 61


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 3 workers on 2 cores
def test_large_folders_are_decoded_by_worker_processes_in_the_same_order(isolated, monkeypatch):
    root = isolated / "jpegs"
    write_image_folder(root, ["a", "b", "c"], 5, size=(40, 36))
    serial, classes = image_folder.read_image_folder(root, 32, resize=True)
    monkeypatch.setattr(image_folder, "PARALLEL_DECODE_FROM", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setenv("GNS_CACHE_DIR", str(isolated / "other-cache"))
    parallel, _ = image_folder.read_image_folder(root, 32, resize=True)
    assert classes == ("a", "b", "c") and serial.tensors[0].shape == (15, 3, 32, 32)
    assert torch.equal(serial.tensors[0], parallel.tensors[0]) and torch.equal(serial.tensors[1], parallel.tensors[1])


# --- ImageNet ---------------------------------------------------------------------------------


def test_imagenet_without_a_folder_is_one_clear_error(isolated):
    with pytest.raises(DatasetError) as err:
        gym.make("GNS/ImageNet-ResNet34-v0")
    message = str(err.value)
    assert "data_dir" in message and "GNS_IMAGENET_DIR" in message and "train/<wnid>/*.JPEG" in message
    with pytest.raises(DatasetError, match="nowhere does not exist.*cannot be downloaded"):
        gym.make("GNS/ImageNet-ResNet34-v0", data_dir=str(isolated / "nowhere"))


def test_imagenet_env_steps_on_a_fabricated_folder(isolated):
    root = isolated / "imagenet"
    wnids = ["n01440764", "n01443537", "n01484850"]
    write_image_folder(root / "train", wnids, 12, size=(80, 100))
    write_image_folder(root / "val", wnids, 2, size=(64, 48), seed=1)
    images, labels = load_imagenet("train", str(root)).tensors
    assert images.shape == (36, 3, 64, 64) and images.dtype == torch.uint8 and labels.max() == 2
    spec = PRESETS["GNS/ImageNet-ResNet34-v0"]
    assert (spec.num_classes, spec.total_steps, spec.decision_interval) == (1000, 62600, 500)
    env = gym.make("GNS/ImageNet-ResNet34-v0", data_dir=str(root), **TINY)
    assert env.unwrapped.graph.num_nodes == 73
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(np.zeros(1, np.float32))
    assert terminated and np.isfinite(reward) and 0.0 <= env.unwrapped.evaluate_test() <= 1.0
    env.close()


# --- lite presets on the real CIFAR-10 JPEGs --------------------------------------------------


@pytest.fixture(scope="session")
def cifar10_dir() -> str:
    """The real CIFAR-10 JPEG copy ($GNS_CIFAR10_DIR, else ../shared/data/cifar10 next to the
    repository), decoded once into the default cache: required when CI=true, skipped elsewhere."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
    folder = Path(os.environ.get("GNS_CIFAR10_DIR") or default)
    try:
        load_cifar("cifar10", "train", str(folder))
        load_cifar("cifar10", "test", str(folder))
    except DatasetError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the real CIFAR-10 images (set GNS_CIFAR10_DIR): {err}")
        pytest.skip(f"the real CIFAR-10 images are not available (set GNS_CIFAR10_DIR): {err}")
    return str(folder)


def test_the_real_cifar10_folder(cifar10_dir, monkeypatch):
    monkeypatch.setattr(image_folder, "_decode", lambda *args: pytest.fail("decoded again instead of the cache"))
    start = time.perf_counter()
    train = load_cifar("cifar10", "train", cifar10_dir)
    test = load_cifar("cifar10", "test", cifar10_dir)
    assert time.perf_counter() - start < 10  # the decoded arrays, not 30k JPEGs
    assert train.tensors[0].shape == (20000, 3, 32, 32) and test.tensors[0].shape == (10000, 3, 32, 32)
    assert torch.bincount(train.tensors[1]).tolist() == [2000] * 10
    assert torch.bincount(test.tensors[1]).tolist() == [1000] * 10
    mean = train.tensors[0].float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=0.02)  # real images, not noise


@pytest.mark.parametrize("env_id", LITE_IDS)
def test_lite_env_runs_a_short_episode_on_real_images(env_id, cifar10_dir):
    spec = PRESETS[env_id]
    assert spec.num_decisions == 20 and spec.dataset == "cifar10" and spec.val_size == 2000
    env = gym.make(env_id, data_dir=cifar10_dir, total_steps=6, decision_interval=2, val_size=500, batch_size=64)
    assert env.unwrapped.graph.num_repeated_blocks == (3 if "VGG" not in env_id else 4)
    _, info = env.reset(seed=0, options={"initial_lr": 1e-3})
    terminated = False
    while not terminated:
        _, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
    assert info["step"] == 6 and not info["diverged"] and np.isfinite(reward) and info["val_metric"] > 0
    env.close()


def test_check_env_passes_on_a_lite_cifar_env(cifar10_dir):
    env = gym.make("GNS/CIFAR10-Lite-v0", data_dir=cifar10_dir, total_steps=4, decision_interval=2, val_size=128,
                   batch_size=16)  # fmt: skip
    check_env(env.unwrapped)
    env.close()


def test_an_agent_trained_on_the_lite_resnet_acts_on_the_lite_vgg(cifar10_dir, tmp_path):
    from agents.apply import check_observation_space
    from agents.ppo import load_agent_file, make_gns_ppo

    small = dict(data_dir=cifar10_dir, total_steps=4, decision_interval=2, val_size=128, batch_size=16)
    resnet, vgg = (gym.make(env_id, **small) for env_id in LITE_IDS)
    assert resnet.unwrapped.graph.num_nodes != vgg.unwrapped.graph.num_nodes  # 19 vs 13 nodes
    make_gns_ppo(resnet, seed=0).learn(total_timesteps=4).save(tmp_path / "agent.zip")
    agent = load_agent_file(tmp_path / "agent.zip")
    check_observation_space(agent.observation_space, vgg.observation_space, LITE_IDS[1])
    obs, _ = vgg.reset(seed=0, options={"initial_lr": 1e-3})
    terminated = False
    while not terminated:
        action, _ = agent.predict(obs, deterministic=True)
        assert action.shape == (1,) and -1 <= action[0] <= 1
        obs, reward, terminated, _, info = vgg.step(action)
    assert info["step"] == 4 and not info["diverged"] and np.isfinite(reward)
    resnet.close()
    vgg.close()
