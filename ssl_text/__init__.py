"""ssl-text: semi-supervised learning for Transformer encoders on Hugging Face."""

__version__ = "0.1.0"
