#!/usr/bin/env python
from emailsync.cli import main

if __name__ == "__main__":
    main()
