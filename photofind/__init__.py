"""photofind: search your own photo folders by meaning."""

__version__ = "0.1.0"
