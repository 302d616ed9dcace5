"""`python -m mlci`: the same as the `mlci` command."""

from mlci.cli.main import main

main()
