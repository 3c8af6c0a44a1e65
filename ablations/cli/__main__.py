"""`python -m ablations.cli`: the same as the `ablations` console script."""

from ablations.cli.app import main

if __name__ == "__main__":  # not when a spawned worker re-imports the main module
    main()
