"""`python -m facesym_ros.cli`: the facesym command."""

import sys

from facesym_ros.cli import main

sys.exit(main())
