"""genimage-fast: the fast engine for training and evaluating AI-generated-image detectors on GenImage."""

__version__ = "0.1.0"
