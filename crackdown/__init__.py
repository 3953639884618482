"""crackdown: event studies of China's 2020-2023 technology crackdown."""

__version__ = "0.1.0"
