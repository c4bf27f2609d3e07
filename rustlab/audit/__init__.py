"""rustlab audit: photos whose label is probably wrong, found out of fold, and a page to review them."""
