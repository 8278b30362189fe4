"""Packaging for l4p (setuptools). Tool configuration lives in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="l4p",
    version="0.1.0.dev0",
    description="Unified low-level 4D perception from monocular video: depth, flow, motion, cameras, 2D/3D tracks.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["l4p", "l4p.*"]),
    package_data={"l4p.weights": ["*.safetensors"]},  # the shipped l4p_synthetic_s weights
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "einops>=0.7",
        "safetensors>=0.4",
        "opencv-python-headless>=4.8",
        "imageio>=2.31",
        "av>=11",
        "tqdm>=4.60",
        "pillow>=9",
        "matplotlib>=3.7",
        "pytorch-lightning>=2.4",
        "jsonargparse[signatures]>=4.27",
        "tensorboard>=2.14",
        "zarr>=3.0; python_version >= '3.11'",  # prediction store (l4p.inference.store); zarr 3 needs 3.11
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "ruff>=0.5",
            "mypy>=1.8",
            "transformers>=4.40",
            "scipy>=1.15",
            "h5py>=3.8",
            "onnx>=1.16",  # l4p.deploy tests (CPU wheels; no CUDA torch pulled)
            "onnxscript>=0.3",
            "onnxruntime>=1.18",
            "kornia>=0.7",  # tests/test_kornia_crosscheck.py (no torchvision)
        ],
        "bench": ["h5py>=3.8", "scipy>=1.15"],  # scipy: eval_synthetic_heads.py bootstrap
        "onnx": ["onnx>=1.16", "onnxscript>=0.3", "onnxruntime>=1.18"],  # l4p export onnx, load_onnx
    },
    entry_points={"console_scripts": ["l4p=l4p.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
