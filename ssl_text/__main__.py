import sys

from ssl_text.cli.main import main

sys.exit(main())
