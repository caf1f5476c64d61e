"""pipeline: config-driven recurrent sequence models, from YAML to a TF-Serving-ready SavedModel."""

__version__ = "0.1.0"
