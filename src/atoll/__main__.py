"""``python -m atoll`` runs the command line."""

from atoll.cli.main import main

main()
