"""``python -m atoll`` runs the command line."""

from atoll.cli.main import main

if __name__ == "__main__":  # worker processes may import this module: never run it then
    main()
