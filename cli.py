#!/usr/bin/env python3
"""tips-np's command line: `python cli.py --help`."""
from tips_np.cli import main

if __name__ == "__main__":
    main()
