"""scanpy-style front doors: ``magmap.tl.<method>(adata, *, ..., key_added=..., copy=False)``."""
__all__: list[str] = []
