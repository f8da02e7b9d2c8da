class ModelLoadError(RuntimeError):
    """The transformer named in the settings could not be loaded."""
