"""genimage-fast: fast training and evaluation of AI-generated-image detectors on GenImage."""

from setuptools import find_packages, setup

BASE = [
    "torch>=2.4",
    "torchvision>=0.19",
    "timm>=1.0",
    "numpy>=1.24",
    "numba>=0.59",
    "PyTurboJPEG>=1.7,<2",  # 2.x needs libjpeg-turbo 3; Debian 12 ships 2.1
    "pillow>=10.0",
    "pyyaml>=6.0",
    "tqdm>=4.66",
    "matplotlib>=3.7",
    "scipy>=1.10",
    "zstandard>=0.22",  # the `lossless` store's codec (records/lossless.py)
]
EXTRAS = {
    "ffcv": ["ffcv>=1.0.2", "opencv-python-headless>=4.8"],
    "dali": ["nvidia-dali-cuda120>=1.30", "webdataset>=0.2"],
    "test": ["pytest>=8.0", "ruff>=0.5", "scipy>=1.10"],
}
EXTRAS["all"] = sorted({dep for name in ("ffcv", "dali") for dep in EXTRAS[name]})

setup(
    name="genimage-fast",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=["genimage_fast", "genimage_fast.*"]) + ["genimage_fast.kernels"],
    package_dir={"genimage_fast.kernels": "kernels"},
    package_data={"genimage_fast": ["data/*.json", "data/*.txt"]},
    install_requires=BASE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["genimage-fast=genimage_fast.cli:main"]},
)
