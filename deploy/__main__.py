"""``python -m deploy up|down|status``."""

from deploy.cli import main

if __name__ == "__main__":
    main()
