"""python -m genimage_fast.bench.gpucheck [--dry] [--out DIR] [--budget S] [--only a,b]"""

import sys

from genimage_fast.bench.gpucheck.runner import main

sys.exit(main())
