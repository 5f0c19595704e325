"""`python -m kubelab.client.cli` is the `kubelab` command."""

import sys

from kubelab.client.cli.main import main

sys.exit(main())
