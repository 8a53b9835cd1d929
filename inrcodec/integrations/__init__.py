"""Plug-ins for other libraries: a numcodecs codec (``numcodecs.py``) and a zarr v3 array->bytes codec
(``zarr.py``), both registered through entry points (see pyproject.toml) so that zarr finds them by name."""
