"""``python -m mailserver``: the same CLI as the ``mailserver`` console script."""

from mailserver.cli import main

if __name__ == "__main__":
    main()
