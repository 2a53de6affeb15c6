import sys

from agent.registrar.cli import main

sys.exit(main())
