import sys

from generator.quality.run import main

sys.exit(main())
