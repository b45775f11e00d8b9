"""``python -m registry`` runs the modelshelf command line."""

from registry.cli import main

main()
