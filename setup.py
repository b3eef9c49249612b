import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"', (HERE / "seq2seq" / "__init__.py").read_text(), re.M).group(1)

setup(
    name="seq2seq",
    version=VERSION,
    description="Encoder-decoder sequence models: translation, digits-to-words, sequence autoencoders",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["seq2seq", "seq2seq.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "sentencepiece>=0.1.99",
        "sacrebleu>=2.3",
        "datasets>=2.14",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "numpy>=1.23",
    ],
    extras_require={
        # matplotlib and tensorboard: the plots and the TensorBoard log are tested
        # num2words: the digits recipes' targets (the library itself never needs it)
        # scikit-learn, pillow: the images extra (seq2seq/data/images.py), tested
        # starlette, uvicorn, httpx: the serve extra, tested; playwright: drives the system's Chromium in
        # the page's browser test (never 'playwright install': no browser is downloaded)
        "dev": [
            "pytest>=7",
            "hypothesis>=6",
            "ruff>=0.4",
            "matplotlib>=3.5",
            "tensorboard>=2.10",
            "num2words>=0.5.12",
            "starlette>=0.37",
            "uvicorn>=0.30",
            "httpx>=0.27",
            "playwright>=1.40",
            "scikit-learn>=1.0",
            "pillow>=9.0",
        ],
        "recipes": ["num2words>=0.5.12", "matplotlib>=3.5"],
        "plot": ["matplotlib>=3.5"],
        # images: scikit-learn's bundled 8x8 digits (no download) and image files (Pillow)
        "images": ["scikit-learn>=1.0", "pillow>=9.0"],
        "tensorboard": ["tensorboard>=2.10"],
        "serve": ["starlette>=0.37", "uvicorn>=0.30"],
    },
    package_data={"seq2seq.serve": ["page.html"]},
    entry_points={"console_scripts": ["seq2seq=seq2seq.cli:main"]},
)
