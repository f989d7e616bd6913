import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# One version: the package's __version__ (also what `sceneparse --version` prints).
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "sceneparse" / "__init__.py").read_text(), re.M).group(1)

setup(
    name="sceneparse",
    version=VERSION,
    description="Scene parsing: per-pixel scene classes for images, RGB-D frames and video "
    "with a multiscale convnet on a Laplacian pyramid (Farabet et al., PAMI 2013)",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",  # torch 2.13.0 (the pinned build) and zip(strict=) need 3.10
    packages=find_packages(include=["sceneparse", "sceneparse.*"]),
    # Packages at the top of the checkout, said explicitly: an editable install then adds the
    # checkout to sys.path (a .pth file) instead of setuptools' import finder, which printed a
    # warning box ("Editable installation... folders with the same name") on every setup.
    package_dir={"": "."},
    package_data={"sceneparse": ["weights/*.pt", "weights/refiners/*.pt", "weights/refiners/*.yaml", "serve/static/*"]},
    install_requires=[
        "torch>=2.1,<3",  # CI and the scripts pin 2.13.0 (the CPU build)
        "numpy>=1.23",
        "opencv-python-headless>=4.7",
        "scikit-image>=0.21",
        "scipy>=1.9",  # MATLAB files of SIFT Flow and NYU v2
        "h5py>=3.7",  # NYU v2's labelled set (MATLAB v7.3 = HDF5)
        "pydensecrf2>=1.0",  # the dense CRF refiner (the maintained build of pydensecrf)
        "kornia>=0.7",
        "tqdm>=4.60",
        "PyYAML>=6.0",
        "matplotlib>=3.6",
        "Pillow>=9.0",
    ],
    extras_require={
        "3d": ["open3d>=0.17"],
        "demo": ["scikit-video"],
        "dev": ["pytest>=7", "ruff>=0.4", "httpx>=0.24", "playwright>=1.40"],  # httpx, playwright: tests/serve
        # sceneparse export, SceneParser.from_onnx
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
        # sceneparse serve
        "serve": ["fastapi>=0.100", "uvicorn>=0.23", "python-multipart>=0.0.13"],
        # ROS bags in and out without ROS (sources/rosbag.py, sinks/rosbag.py)
        "ros": ["rosbags>=0.10"],
        # sceneparse label --ray: labelling collections on a Ray cluster (sceneparse/distributed/ray_label.py)
        "ray": ["ray[data]>=2.9"],
    },
    entry_points={"console_scripts": ["sceneparse=sceneparse.cli:main"]},
)
