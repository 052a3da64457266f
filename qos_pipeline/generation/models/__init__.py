"""Models: the registry (``assets/models.yaml``), folders added at run time, checkpoint folders and their
content versions, the embedded GGUF model, loading with transformers, and checkpoint discovery."""
