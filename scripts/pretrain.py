"""Entry point for `accelerate launch scripts/pretrain.py CONFIG [overrides]` (same as `ssl-text pretrain`)."""

import sys

from ssl_text.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
