"""Entry point for `accelerate launch scripts/suggest.py --pool ... --out ...` (same as `ssl-text suggest`)."""

import sys

from ssl_text.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["suggest", *sys.argv[1:]]))
