"""`python -m scalesearch.cli`, as the console script."""
from . import main

main()
