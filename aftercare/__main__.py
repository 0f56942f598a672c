"""`python -m aftercare` is the `aftercare` command."""

from aftercare.cli import main

if __name__ == "__main__":
    main()
