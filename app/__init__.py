"""inrcodec's web UI (Gradio): ``inrcodec ui`` or ``from app.main import launch; launch()``.

Thin by design: ``app.handlers`` calls only inrcodec's public API; ``app.main`` lays out the three tabs.
"""
