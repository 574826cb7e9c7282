"""Entry point for `accelerate launch scripts/train.py CONFIG [overrides]` (same as `ssl-text train`)."""

import sys

from ssl_text.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
