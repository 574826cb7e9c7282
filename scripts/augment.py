"""Entry point for `accelerate launch scripts/augment.py back-translate --data ... --out ...`
(same as `ssl-text augment back-translate`): the shards are split over the launched processes."""

import sys

from ssl_text.cli.augment import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
