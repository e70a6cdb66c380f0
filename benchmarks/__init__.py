"""`make bench`: measured speed, size, accuracy loss and footprint (never part of `make test`)."""
