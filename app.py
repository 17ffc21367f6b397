"""Serve the Space: `python app.py [--host HOST] [--port PORT]` (default 127.0.0.1:7860; the environment
variables GRADIO_SERVER_NAME / GRADIO_SERVER_PORT set them too, as on Hugging Face Spaces)."""
from __future__ import annotations

import argparse
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)          # one line per HTTP request otherwise

    from space.app import build_demo, launch

    launch(build_demo(), host=a.host, port=a.port)


if __name__ == "__main__":
    main()
