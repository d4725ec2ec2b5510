"""Dataset loaders. Each returns :class:`torch.utils.data.TensorDataset` objects held in memory."""

from gns_env.data.cifar import load_cifar
from gns_env.data.errors import DatasetError
from gns_env.data.fashion_mnist import load_fashion_mnist
from gns_env.data.image_folder import read_image_folder
from gns_env.data.imagenet import load_imagenet
from gns_env.data.images import load_image_split
from gns_env.data.synthetic import make_synthetic_images

__all__ = [
    "DatasetError",
    "load_cifar",
    "load_fashion_mnist",
    "load_image_split",
    "load_imagenet",
    "make_synthetic_images",
    "read_image_folder",
]
