"""`python -m ablations.cli`: the same as the `ablations` console script."""

if __name__ == "__main__":  # not when a spawned worker re-imports the main module: it imports nothing then
    from ablations.cli.entry import main

    main()
