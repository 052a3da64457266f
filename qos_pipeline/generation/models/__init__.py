"""Models: the registry (``assets/models.yaml``), folders added at run time, checkpoint folders and their
content versions, the embedded GGUF model, loading with transformers (``loaded``: the one loader and cache every
model user goes through; ``loading``: the transformers calls), and checkpoint discovery."""
