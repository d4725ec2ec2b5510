"""Dataset loaders. Each returns :class:`torch.utils.data.TensorDataset` objects held in memory."""

from gns_env.data.errors import DatasetError
from gns_env.data.fashion_mnist import load_fashion_mnist
from gns_env.data.images import load_image_split
from gns_env.data.synthetic import make_synthetic_images

__all__ = ["DatasetError", "load_fashion_mnist", "load_image_split", "make_synthetic_images"]
