"""Entry point for `accelerate launch scripts/distill.py CONFIG [overrides]` (same as `ssl-text distill`)."""

import sys

from ssl_text.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]]))
