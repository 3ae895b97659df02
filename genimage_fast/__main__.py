"""`python -m genimage_fast ...` (also what torchrun launches)."""

from genimage_fast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
