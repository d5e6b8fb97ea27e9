import sys

from airflow_batch_runner.emulator.server import main

sys.exit(main())
