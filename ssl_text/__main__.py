import sys

from ssl_text.cli import main

sys.exit(main())
